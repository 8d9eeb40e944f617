import {
  getAddress,
  type Hex,
  hashTypedData,
  isAddressEqual,
  parseErc6492Signature,
  zeroAddress,
} from "viem";
import { erc3009DepositTypedData, permit2DepositTypedData } from "../../protocol/batch-settlement.ts";
import {
  type BatchPayload,
  batchError,
  type ChannelConfig,
  chainIdFromNetwork,
  channelIdOf,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  erc3009DepositNonce,
  MAX_WITHDRAW_DELAY,
  MIN_WITHDRAW_DELAY,
  type PaymentPayload,
  type PaymentRequirements,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  parseBatchPayload,
  type Voucher,
  voucherDigest,
  X402Error,
} from "../../protocol/index.ts";
import { checkEip2612, eip2612InfoOf, eip2612Permit } from "../permit2/eip2612.ts";
import { recoversTo } from "../signatures.ts";
import {
  batchContract,
  type DepositCall,
  depositCallData,
  erc3009Collector,
  erc3009CollectorData,
  permit2Collector,
  permit2CollectorData,
} from "./calls.ts";
import type { BatchChain, OnChainChannel } from "./chain.ts";

type DepositPayload = Extract<BatchPayload, { type: "deposit" }>;

/** A verdict: valid with the channel as read (deposits: before the deposit), or a code. */
export type BatchVerdict =
  | { ok: true; state: OnChainChannel; deposit?: DepositCall }
  | { ok: false; reason: string; message?: string };

/** Seconds an authorization must stay valid past the host clock, as the SDK requires. */
const TIME_BUFFER_SECONDS = 6;

const fail = (suffix: string, message?: string): BatchVerdict => ({
  ok: false,
  reason: batchError(suffix),
  ...(message ? { message } : {}),
});

/**
 * The SDK's channel rules (`validateChannelConfig`), in its order: the config hashes to the voucher's
 * channel id, is paid to `payTo`, names the advertised receiver authorizer, holds `asset`, has the
 * advertised withdrawal delay, within the contract's bounds. Undefined when they hold.
 */
export function configRule(
  config: ChannelConfig,
  channelId: Hex,
  requirements: PaymentRequirements,
): string | undefined {
  const chainId = chainIdFromNetwork(requirements.network);
  if (channelIdOf(chainId, config).toLowerCase() !== channelId.toLowerCase()) {
    return batchError("channel_id_mismatch");
  }
  if (getAddress(config.receiver) !== getAddress(requirements.payTo)) return batchError("receiver_mismatch");
  const extra = requirements.extra as { receiverAuthorizer?: unknown; withdrawDelay?: unknown } | undefined;
  const authorizer = extra?.receiverAuthorizer;
  if (
    typeof authorizer !== "string" ||
    !authorizer ||
    getAddress(authorizer) === zeroAddress ||
    getAddress(config.receiverAuthorizer) !== getAddress(authorizer)
  ) {
    return batchError("receiver_authorizer_mismatch");
  }
  if (getAddress(config.token) !== getAddress(requirements.asset)) return batchError("token_mismatch");
  if (extra?.withdrawDelay !== undefined && config.withdrawDelay !== Number(extra.withdrawDelay)) {
    return batchError("withdraw_delay_mismatch");
  }
  if (config.withdrawDelay < MIN_WITHDRAW_DELAY || config.withdrawDelay > MAX_WITHDRAW_DELAY) {
    return batchError("withdraw_delay_out_of_range");
  }
  return undefined;
}

/**
 * The voucher's signature as the contract checks it on claim: with a payer authorizer, plain ECDSA
 * recovery to it (no code check, no ERC-1271); without one, the payer's `SignatureChecker` rule.
 */
export async function voucherSigned(
  chain: BatchChain,
  chainId: number,
  config: ChannelConfig,
  voucher: Voucher,
) {
  const digest = voucherDigest(chainId, voucher.channelId, BigInt(voucher.maxClaimableAmount));
  if (getAddress(config.payerAuthorizer) !== zeroAddress) {
    // Any length: the SDK recovers whatever it is given (viem takes 64-byte compact signatures).
    return recoversTo(config.payerAuthorizer, digest, voucher.signature);
  }
  return chain.signedBy(getAddress(config.payer), digest, voucher.signature);
}

/**
 * Verifies a voucher or a refund request (the SDK's `verifyVoucher`): channel rules, voucher signature, the
 * channel's state, then balance and cumulative checks. A refund may repeat what is already claimed (its
 * voucher charges nothing new); a voucher must exceed it.
 */
export async function verifyVoucher(
  chain: BatchChain,
  payload: Extract<BatchPayload, { type: "voucher" | "refund" }>,
  requirements: PaymentRequirements,
): Promise<BatchVerdict> {
  const { channelConfig: config, voucher } = payload;
  const rule = configRule(config, voucher.channelId, requirements);
  if (rule) return { ok: false, reason: rule };
  const chainId = chainIdFromNetwork(requirements.network);
  if (!(await voucherSigned(chain, chainId, config, voucher))) return fail("voucher_signature");
  const read = await chain.channel(voucher.channelId);
  // The SDK throws here (HTTP 500); a verdict says the same without an error page.
  if (!read) return fail("rpc_read_failed");
  const { state } = read;
  if (state.balance === 0n) return fail("channel_not_found");
  const max = BigInt(voucher.maxClaimableAmount);
  if (max > state.balance) return fail("cumulative_exceeds_balance");
  const below = payload.type === "refund" ? max < state.totalClaimed : max <= state.totalClaimed;
  if (below) return fail("cumulative_below_claimed");
  return { ok: true, state };
}

type Method = "eip3009" | "permit2";

/**
 * `extra.assetTransferMethod`, else the authorization the payload carries, as the SDK resolves it: any hint
 * but `permit2` means EIP-3009.
 */
function methodOf(authorization: Record<string, unknown>, requirements: PaymentRequirements): Method {
  const hinted = (requirements.extra as { assetTransferMethod?: unknown } | undefined)?.assetTransferMethod;
  if (hinted) return hinted === "permit2" ? "permit2" : "eip3009";
  return authorization.permit2Authorization ? "permit2" : "eip3009";
}

/**
 * Verifies a deposit (the SDK's `verifyDeposit`), in its order: channel rules; the transfer method and its
 * authorization (ERC-3009 `ReceiveWithAuthorization` to the collector, or a Permit2 witness transfer to the
 * Permit2 collector with its allowance, or an EIP-2612 permit sponsoring it); the voucher; the channel and
 * the payer's balance; the cumulative checks; then `deposit(...)` simulated from a relayer. `raw` is the
 * payload as it came (the authorization is checked for presence before its fields are parsed).
 */
export async function verifyDeposit(
  chain: BatchChain,
  payment: PaymentPayload,
  raw: Record<string, unknown>,
  requirements: PaymentRequirements,
  options: { simulate: boolean },
): Promise<BatchVerdict> {
  // Channel and voucher first, as a voucher payload: the deposit's authorization is judged in its turn.
  const head = parseBatchPayload({ type: "voucher", channelConfig: raw.channelConfig, voucher: raw.voucher });
  const { channelConfig: config, voucher } = head;
  const rule = configRule(config, voucher.channelId, requirements);
  if (rule) return { ok: false, reason: rule };

  const authorization = (raw.deposit as { authorization: Record<string, unknown> }).authorization;
  const method = methodOf(authorization, requirements);
  if (method === "permit2" && !authorization.permit2Authorization) return fail("payload_type");
  if (method === "eip3009" && !authorization.erc3009Authorization)
    return fail("erc3009_authorization_required");
  const payload = parseBatchPayload(raw) as DepositPayload;
  const chainId = chainIdFromNetwork(requirements.network);
  const payer = getAddress(config.payer);
  const amount = BigInt(payload.deposit.amount);
  const now = Math.floor(Date.now() / 1000);

  let deposit: DepositCall;
  if (method === "eip3009" && "erc3009Authorization" in payload.deposit.authorization) {
    const a = payload.deposit.authorization.erc3009Authorization;
    const extra = requirements.extra as { name?: unknown; version?: unknown } | undefined;
    if (
      typeof extra?.name !== "string" ||
      !extra.name ||
      typeof extra.version !== "string" ||
      !extra.version
    ) {
      return fail("missing_eip712_domain");
    }
    if (BigInt(a.validBefore) < BigInt(now + TIME_BUFFER_SECONDS))
      return fail("payload_authorization_valid_before");
    if (BigInt(a.validAfter) > BigInt(now)) return fail("payload_authorization_valid_after");
    const wrapped = parseErc6492Signature(a.signature);
    let signature = a.signature;
    if (wrapped.address && wrapped.data && !isAddressEqual(wrapped.address, zeroAddress)) {
      // An undeployed smart wallet needs its factory called first; no factory is allowed here (the SDK's
      // default allowlist is empty), so only a wallet already deployed may deposit with such a signature.
      if (!(await chain.checks.hasCode(payer))) return fail("eip6492_factory_not_allowed");
      signature = wrapped.signature;
    }
    const digest = hashTypedData(
      erc3009DepositTypedData(
        {
          name: extra.name,
          version: extra.version,
          chainId,
          verifyingContract: getAddress(requirements.asset),
        },
        {
          from: payer,
          to: getAddress(ERC3009_DEPOSIT_COLLECTOR_ADDRESS),
          value: payload.deposit.amount,
          validAfter: a.validAfter,
          validBefore: a.validBefore,
          nonce: erc3009DepositNonce(voucher.channelId, a.salt),
        },
      ),
    );
    if (!(await chain.signedBy(payer, digest, signature))) return fail("receive_authorization_signature");
    deposit = { collector: erc3009Collector, collectorData: erc3009CollectorData(a) };
  } else if ("permit2Authorization" in payload.deposit.authorization) {
    const a = payload.deposit.authorization.permit2Authorization;
    if (getAddress(a.from) !== payer) return fail("permit2_invalid_signature");
    if (getAddress(a.spender) !== getAddress(PERMIT2_DEPOSIT_COLLECTOR_ADDRESS))
      return fail("permit2_invalid_spender");
    if (getAddress(a.permitted.token) !== getAddress(requirements.asset)) return fail("token_mismatch");
    if (BigInt(a.permitted.amount) !== amount) return fail("permit2_amount_mismatch");
    // Compared as strings, as the SDK does: a witness id in other letter case is another channel to it.
    if (a.witness.channelId !== voucher.channelId) return fail("channel_id_mismatch");
    if (BigInt(a.deadline) < BigInt(now + TIME_BUFFER_SECONDS)) return fail("permit2_deadline_expired");
    if (!(await chain.signedBy(payer, hashTypedData(permit2DepositTypedData(chainId, a)), a.signature))) {
      return fail("permit2_invalid_signature");
    }
    const info = eip2612InfoOf(payment);
    if (info) {
      const invalid = checkEip2612(info, payer, getAddress(requirements.asset), now);
      if (invalid) return { ok: false, reason: invalid };
      if (BigInt(info.amount) !== amount) return fail("eip2612_amount_mismatch");
      const permit = eip2612Permit(info);
      // The SDK cannot split such a signature and throws; a malformed request is ours to refuse.
      if (!permit) throw new X402Error("invalid_payload", "the EIP-2612 permit's signature must be 65 bytes");
      deposit = { collector: permit2Collector, collectorData: permit2CollectorData(a, permit) };
    } else if (hasErc20Approval(payment)) {
      // Sponsoring by a pre-signed approval needs a facilitator extension this module does not have.
      return fail("erc20_approval_unavailable");
    } else {
      const allowance = await chain.permit2Allowance(getAddress(requirements.asset), payer);
      if (allowance === undefined || allowance < amount) return fail("permit2_allowance_required");
      deposit = { collector: permit2Collector, collectorData: permit2CollectorData(a) };
    }
  } else {
    return fail("payload_type");
  }

  if (!(await voucherSigned(chain, chainId, config, voucher))) return fail("voucher_signature");
  const read = await chain.channel(voucher.channelId, { token: getAddress(requirements.asset), payer });
  if (!read || read.payerBalance === undefined) return fail("rpc_read_failed");
  const { state } = read;
  if (read.payerBalance < amount) return fail("insufficient_balance");
  const max = BigInt(voucher.maxClaimableAmount);
  if (max > state.balance + amount) return fail("cumulative_exceeds_balance");
  if (max <= state.totalClaimed) return fail("cumulative_below_claimed");
  if (options.simulate) {
    const simulated = await chain.call(batchContract, depositCallData(config, amount, deposit));
    if (!simulated.ok) return fail("deposit_simulation_failed", simulated.message);
  }
  return { ok: true, state, deposit };
}

/**
 * Whether the payment carries an `erc20ApprovalGasSponsoring` extension the SDK would take up (every field
 * of its `info` present; an incomplete one counts as none and the allowance is checked instead).
 */
function hasErc20Approval(payment: PaymentPayload): boolean {
  const extensions = (payment as { extensions?: Record<string, { info?: unknown } | undefined> }).extensions;
  const info = extensions?.erc20ApprovalGasSponsoring?.info as Record<string, unknown> | undefined;
  if (typeof info !== "object" || info === null) return false;
  return ["from", "asset", "spender", "amount", "signedTransaction", "version"].every((field) =>
    Boolean(info[field]),
  );
}
