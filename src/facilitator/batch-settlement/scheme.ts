import { getAddress, type Hex, keccak256 } from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { batchSettleActionOf, parseServerBatchPayload } from "../../protocol/batch-settlement.ts";
import {
  type BatchPayload,
  batchError,
  channelIdOf,
  type Network,
  parseBatchPayload,
  type SettleResponse,
  type SupportedKind,
  type VerifyResponse,
} from "../../protocol/index.ts";
import type { FacilitatorScheme, SchemeRequest, SettlementLoad } from "../scheme.ts";
import { BatchChain } from "./chain.ts";
import { SettleOnce } from "./once.ts";
import {
  BatchSender,
  claim,
  claimKey,
  depositAnswer,
  refund,
  sendDeposit,
  settle,
  wireState,
} from "./settle.ts";
import { type BatchVerdict, verifyDeposit, verifyVoucher } from "./verify.ts";

export type BatchSettlementOptions = {
  /** JSON-RPC endpoint of the chain the channels live on. */
  rpcUrl: string;
  /** Its chain id; the scheme serves `eip155:<chainId>`. */
  chainId: number;
  /** Private keys that send the scheme's transactions; each belongs to this scheme's pool alone. */
  relayerKeys: readonly Hex[];
  /**
   * The receiver authorizer the facilitator holds: advertised on `/supported` (`extra.receiverAuthorizer`)
   * for servers to name in their channels, and used to sign `ClaimBatch` and `Refund` when a server's
   * request carries no signature of its own. A dedicated key (not a relayer's). Without it nothing is
   * advertised and servers must sign their claims and refunds themselves, as with the SDK's facilitator
   * built without an authorizer signer.
   */
  receiverAuthorizerKey?: Hex;
  /** How long a settle waits for its receipt before answering `settlement_pending` (default 5 s). */
  receiptTimeoutMs?: number;
};

const SCHEME = "batch-settlement";
/** Under a resource server's default facilitator timeout (10 s), as in the other modules. */
const DEFAULT_RECEIPT_TIMEOUT_MS = 5_000;
/** How long a claim or refund is remembered after it went through: repeats within it are answered from it. */
const ACTION_MEMORY_SECONDS = 600;
const SWEEP_INTERVAL_MS = 60_000;

type DepositPayload = Extract<BatchPayload, { type: "deposit" }>;

/**
 * The `batch-settlement` scheme on an EVM chain: payment channels on x402BatchSettlement, funded by
 * deposits through the ERC-3009 or Permit2 collector and spent by vouchers the resource server keeps and
 * claims in batches. Verification and the server's settle actions (deposit, claim, settle, refund) follow
 * @x402/evm 2.27's `BatchSettlementEvmScheme` step by step and code by code. What differs: each action is
 * sent at most once however often, or concurrently, it is asked (a deposit is keyed by its authorization
 * signature, a claim by its batch digest, a refund by its channel and nonce, a settle by receiver and token
 * while it runs), repeats are answered from the first attempt with `extra.duplicate`, the relayer keys are a
 * pool, and a chain read that fails is a verdict (`…_rpc_read_failed`) or a 502, never a 500.
 */
export class BatchSettlementScheme implements FacilitatorScheme {
  readonly scheme = SCHEME;
  readonly kinds: readonly SupportedKind[];
  readonly signers: Readonly<Record<string, readonly string[]>>;
  readonly network: Network;
  private readonly chainId: number;
  private readonly chain: BatchChain;
  private readonly sender: BatchSender;
  private readonly authorizer: PrivateKeyAccount | undefined;
  private readonly deposits = new SettleOnce();
  private readonly actions = new SettleOnce();
  /** Settles running now, by receiver and token: a concurrent one joins, a later one reads again. */
  private readonly settling = new Map<string, Promise<SettleResponse>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: BatchSettlementOptions) {
    this.chainId = options.chainId;
    this.network = `eip155:${options.chainId}` as Network;
    this.chain = new BatchChain({
      rpcUrl: options.rpcUrl,
      chainId: options.chainId,
      relayerKeys: options.relayerKeys,
      receiptTimeoutMs: options.receiptTimeoutMs ?? DEFAULT_RECEIPT_TIMEOUT_MS,
    });
    this.sender = new BatchSender(this.chain, this.network);
    this.authorizer = options.receiverAuthorizerKey
      ? privateKeyToAccount(options.receiverAuthorizerKey)
      : undefined;
    if (this.authorizer && this.chain.relayers.addresses.includes(this.authorizer.address)) {
      // A relayer's key signing authorizations is workable, but the SDK and spec want a dedicated one.
      throw new Error("the receiver authorizer key must not be one of the relayer keys");
    }
    this.kinds = [
      {
        x402Version: 2,
        scheme: SCHEME,
        network: this.network,
        ...(this.authorizer ? { extra: { receiverAuthorizer: this.authorizer.address } } : {}),
      },
    ];
    this.signers = { "eip155:*": this.chain.relayers.addresses };
    this.sweeper = setInterval(() => {
      const now = Math.floor(Date.now() / 1000);
      this.deposits.sweep(now);
      this.actions.sweep(now);
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  get rpcCalls() {
    return this.chain.rpcCalls;
  }

  settlementLoad(): SettlementLoad {
    const relayers = this.chain.relayers;
    return { relayers: relayers.addresses.length, busy: relayers.busy, queued: relayers.waiting };
  }

  async verify(request: SchemeRequest): Promise<VerifyResponse> {
    const { paymentPayload: payment, paymentRequirements: requirements } = request;
    if (payment.accepted.scheme !== SCHEME || requirements.scheme !== SCHEME) {
      return { isValid: false, invalidReason: batchError("scheme") };
    }
    if (payment.accepted.network !== requirements.network) {
      return { isValid: false, invalidReason: batchError("network_mismatch") };
    }
    const raw = payment.payload as Record<string, unknown>;
    const action = batchSettleActionOf(raw);
    let verdict: BatchVerdict;
    let payer: string;
    let channelId: Hex;
    if (action === "deposit") {
      verdict = await verifyDeposit(this.chain, payment, raw, requirements, { simulate: true });
      const head = raw as { channelConfig: { payer: string }; voucher: { channelId: Hex } };
      payer = head.channelConfig.payer;
      channelId = head.voucher.channelId;
    } else if (raw.type === "voucher" || raw.type === "refund") {
      const payload = voucherShaped(raw);
      if (!payload) return { isValid: false, invalidReason: batchError("payload_type") };
      verdict = await verifyVoucher(this.chain, payload, requirements);
      payer = payload.channelConfig.payer;
      channelId = payload.voucher.channelId;
    } else {
      return { isValid: false, invalidReason: batchError("payload_type") };
    }
    if (!verdict.ok) {
      return {
        isValid: false,
        invalidReason: verdict.reason,
        ...(verdict.message ? { invalidMessage: verdict.message } : {}),
        payer,
      };
    }
    return { isValid: true, payer, extra: wireState(channelId, verdict.state) };
  }

  async settle(request: SchemeRequest): Promise<SettleResponse> {
    const { paymentPayload: payment, paymentRequirements: requirements } = request;
    const raw = payment.payload as Record<string, unknown>;
    const action = batchSettleActionOf(raw);
    if (action === "deposit") return this.settleDeposit(request, raw);
    if (action === undefined) {
      return {
        success: false,
        errorReason: batchError("payload_type"),
        transaction: "",
        network: requirements.network as Network,
      };
    }
    const payload = parseServerBatchPayload(raw);
    // The routes hand this scheme only requests on its own network.
    const { chainId, sender } = this;
    if (payload.type === "claim") {
      const key = claimKey(chainId, payload.claims);
      const { response, duplicate } = await this.actions.run(
        key,
        nowSeconds() + ACTION_MEMORY_SECONDS,
        () =>
          claim(
            sender,
            this.chain,
            chainId,
            this.authorizer,
            payload.claims,
            payload.claimAuthorizerSignature,
          ),
        (pending) => this.recheckPlain(sender, pending, batchError("claim_transaction_failed")),
      );
      return marked(response, duplicate);
    }
    if (payload.type === "settle") {
      const receiver = getAddress(payload.receiver);
      const token = getAddress(payload.token);
      const key = `${receiver}:${token}`;
      const running = this.settling.get(key);
      if (running) return marked(await running, true);
      const attempt = settle(sender, this.chain, receiver, token);
      this.settling.set(key, attempt);
      try {
        return await attempt;
      } finally {
        this.settling.delete(key);
      }
    }
    const channelId = channelIdOf(chainId, payload.channelConfig);
    // The contract's nonce makes a refund single-use; the amount tells a repeat from another request.
    const key = keccak256(
      `${channelId}${BigInt(payload.refundNonce).toString(16).padStart(64, "0")}${BigInt(payload.amount).toString(16).padStart(64, "0")}`,
    );
    const { response, duplicate } = await this.actions.run(
      key,
      nowSeconds() + ACTION_MEMORY_SECONDS,
      () => refund(sender, this.chain, chainId, this.authorizer, payload),
      (pending) => this.recheckPlain(sender, pending, batchError("refund_transaction_failed")),
    );
    return marked(response, duplicate);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return this.chain.close();
  }

  /**
   * A deposit, once: re-verified in full (simulation included) and sent from the pool. Keyed by its
   * authorization's signature, as the SDK keys its pending store; a repeat joins the first attempt.
   */
  private async settleDeposit(request: SchemeRequest, raw: Record<string, unknown>): Promise<SettleResponse> {
    const { paymentPayload: payment, paymentRequirements: requirements } = request;
    const sender = this.sender;
    const authorization = (
      raw.deposit as {
        authorization: Record<
          string,
          { signature?: unknown; validBefore?: unknown; deadline?: unknown } | undefined
        >;
      }
    ).authorization;
    const signed = authorization.erc3009Authorization ?? authorization.permit2Authorization;
    const signature = typeof signed?.signature === "string" ? signed.signature : undefined;
    const attempt = async (): Promise<SettleResponse> => {
      const verdict = await verifyDeposit(this.chain, payment, raw, requirements, { simulate: true });
      const payload = raw as DepositPayload;
      if (!verdict.ok) {
        return {
          ...sender.failure(
            verdict.reason,
            "",
            payload.channelConfig.payer,
            verdict.message ?? verdict.reason,
          ),
        };
      }
      return sendDeposit(
        sender,
        this.chain,
        payload.channelConfig,
        payload.voucher.channelId,
        BigInt(payload.deposit.amount),
        verdict.deposit as NonNullable<typeof verdict.deposit>,
        verdict.state,
      );
    };
    if (!signature) return attempt();
    const window = signed?.validBefore ?? signed?.deadline;
    const expiresAt =
      typeof window === "string" && /^[0-9]{1,15}$/.test(window)
        ? Number(window)
        : nowSeconds() + ACTION_MEMORY_SECONDS;
    const { response, duplicate } = await this.deposits.run(
      keccak256(signature as Hex),
      expiresAt,
      attempt,
      async (pending) => {
        const payload = parseBatchPayload(raw) as DepositPayload;
        const checked = await sender.recheck(
          pending.transaction as Hex,
          batchError("deposit_transaction_failed"),
          payload.channelConfig.payer,
        );
        if (checked.ok === "dropped") return attempt();
        if (!checked.ok) return checked.response;
        return depositAnswer(
          this.chain,
          sender,
          payload.voucher.channelId,
          BigInt(payload.deposit.amount),
          checked.receipt.transactionHash,
          payload.channelConfig.payer,
          undefined,
        );
      },
    );
    return marked(response, duplicate);
  }

  /** A claim or refund that timed out, asked again: its receipt decides; dropped, it stays pending. */
  private async recheckPlain(
    sender: BatchSender,
    pending: SettleResponse,
    failedReason: string,
  ): Promise<SettleResponse> {
    const checked = await sender.recheck(pending.transaction as Hex, failedReason, pending.payer);
    if (checked.ok === "dropped") {
      // The action's signatures and nonce are still unspent; the server may ask again once this is forgotten.
      return sender.failure(failedReason, "", pending.payer, "the transaction was dropped");
    }
    if (!checked.ok) return checked.response;
    return {
      success: true,
      transaction: checked.receipt.transactionHash,
      network: sender.network,
      ...(pending.payer ? { payer: pending.payer } : {}),
    };
  }
}

/** A voucher or refund payload of the SDK's shape (`channelConfig` and voucher fields), parsed strictly. */
function voucherShaped(
  raw: Record<string, unknown>,
): Extract<BatchPayload, { type: "voucher" | "refund" }> | undefined {
  const v = raw.voucher as Record<string, unknown> | undefined;
  if (!("channelConfig" in raw) || typeof v !== "object" || v === null) return undefined;
  if (!("channelId" in v && "maxClaimableAmount" in v && "signature" in v)) return undefined;
  return parseBatchPayload(raw) as Extract<BatchPayload, { type: "voucher" | "refund" }>;
}

/** A repeat's answer, marked so a resource server does not take it for a second payment. */
function marked(response: SettleResponse, duplicate: boolean): SettleResponse {
  if (!duplicate) return response;
  return { ...response, extra: { ...(response.extra ?? {}), duplicate: true } };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
