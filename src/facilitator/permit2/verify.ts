import { type Address, getAddress, type Hex } from "viem";
import {
  chainIdFromNetwork,
  type PaymentPayload,
  type PaymentRequirements,
  PERMIT2_SPENDER,
  type Permit2Kind,
  type Permit2Payload,
  permit2Digest,
  type X402ErrorCode,
} from "../../protocol/index.ts";
import type { ChainChecks } from "../exact-evm/chain-checks.ts";
import { signedBy } from "../signatures.ts";
import { checkEip2612, eip2612InfoOf, eip2612Permit } from "./eip2612.ts";
import { proxyOf, settleCallData } from "./proxy-calls.ts";
import type { Permit2Simulation } from "./simulation.ts";

export type Permit2Verdict = { ok: true } | { ok: false; reason: X402ErrorCode };

export type Permit2VerifyOptions = {
  /** Simulate the settlement by `eth_call` (verify: always; settle: as the SDK, per scheme). */
  simulate: boolean;
  /** The facilitator's own addresses: an upto witness must name one of them. */
  facilitators: readonly Address[];
};

export type Permit2Chain = { checks: ChainChecks; simulation: Permit2Simulation };

/** Seconds a deadline must lie ahead of the host clock, as the SDK requires. */
const DEADLINE_BUFFER_SECONDS = 6;

/**
 * Verifies a Permit2 payment (`exact` by Permit2, or `upto`) with the SDK's checks in its order and with its
 * codes (@x402/evm 2.27 `verifyPermit2`, `verifyUptoPermit2`): scheme, network, spender, recipient, (upto)
 * facilitator, deadline, validAfter, amount, token, asset code, signature, then the settlement simulated by
 * `eth_call` and, when that fails, diagnosed. Time checks use the host clock, as the SDK's do.
 */
export async function verifyPermit2(
  kind: Permit2Kind,
  chain: Permit2Chain,
  payment: PaymentPayload,
  requirements: PaymentRequirements,
  payload: Permit2Payload,
  options: Permit2VerifyOptions,
): Promise<Permit2Verdict> {
  if (payment.accepted.scheme !== kind || requirements.scheme !== kind) {
    return { ok: false, reason: kind === "exact" ? "unsupported_payload_type" : "invalid_upto_evm_scheme" };
  }
  if (payment.accepted.network !== requirements.network) {
    return {
      ok: false,
      reason: kind === "exact" ? "invalid_exact_evm_network_mismatch" : "invalid_upto_evm_network_mismatch",
    };
  }
  const chainId = chainIdFromNetwork(requirements.network);
  const asset = getAddress(requirements.asset);
  // Asked at once, reported after the field checks, as the SDK does.
  const assetCheck = chain.checks.assetDeployed(asset);
  assetCheck.catch(() => {});

  const authorization = payload.permit2Authorization;
  if (getAddress(authorization.spender) !== PERMIT2_SPENDER[kind]) {
    return { ok: false, reason: "invalid_permit2_spender" };
  }
  if (getAddress(authorization.witness.to) !== getAddress(requirements.payTo)) {
    return { ok: false, reason: "invalid_permit2_recipient_mismatch" };
  }
  if (kind === "upto") {
    const facilitator = getAddress(authorization.witness.facilitator ?? "0x");
    if (!options.facilitators.some((address) => getAddress(address) === facilitator)) {
      return { ok: false, reason: "upto_facilitator_mismatch" };
    }
  }
  const now = Math.floor(Date.now() / 1000);
  if (BigInt(authorization.deadline) < BigInt(now + DEADLINE_BUFFER_SECONDS)) {
    return { ok: false, reason: "permit2_deadline_expired" };
  }
  if (BigInt(authorization.witness.validAfter) > BigInt(now)) {
    return { ok: false, reason: "permit2_not_yet_valid" };
  }
  if (BigInt(authorization.permitted.amount) !== BigInt(requirements.amount)) {
    return { ok: false, reason: "permit2_amount_mismatch" };
  }
  if (getAddress(authorization.permitted.token) !== asset) {
    return { ok: false, reason: "permit2_token_mismatch" };
  }
  const signed = await signatureHolds(chain.checks, kind, chainId, payload);
  if (!(await assetCheck)) return { ok: false, reason: "asset_not_deployed_contract" };
  if (!signed) return { ok: false, reason: "invalid_permit2_signature" };
  if (!options.simulate) return { ok: true };

  const payer = getAddress(authorization.from);
  const proxy = proxyOf(kind);
  // The upto proxy lets only the witness's facilitator settle: the simulation is sent as it.
  const from =
    kind === "upto" ? getAddress(authorization.witness.facilitator ?? "0x") : options.facilitators[0];
  const amount = BigInt(requirements.amount);
  const info = eip2612InfoOf(payment);
  let data: Hex | undefined;
  if (info) {
    const invalid = checkEip2612(info, payer, asset, now);
    if (invalid) return { ok: false, reason: invalid };
    const permit2612 = eip2612Permit(info);
    data = permit2612 && settleCallData(kind, payload, { amount, permit2612 });
  } else {
    data = settleCallData(kind, payload, { amount });
  }
  if (data && (await chain.simulation.call(from ?? payer, proxy, data))) return { ok: true };
  return { ok: false, reason: await chain.simulation.diagnose(proxy, asset, payer, amount) };
}

/**
 * The SDK's signature rule (`verifyTypedDataSignature`): a payer without code must have signed with
 * 65-byte ECDSA over the Permit2 digest; a payer with code must accept the digest by ERC-1271.
 */
async function signatureHolds(
  checks: ChainChecks,
  kind: Permit2Kind,
  chainId: number,
  payload: Permit2Payload,
): Promise<boolean> {
  const from = payload.permit2Authorization.from;
  let digest: Hex;
  try {
    digest = permit2Digest(kind, chainId, payload.permit2Authorization);
  } catch {
    return false;
  }
  return signedBy(checks, from, digest, payload.signature);
}
