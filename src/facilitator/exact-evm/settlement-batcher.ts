import {
  type Address,
  encodeFunctionData,
  type Hash,
  type Hex,
  hexToBigInt,
  type TransactionReceipt,
  toEventSelector,
} from "viem";
import { MULTICALL3_ADDRESS, payoutSplitterAbi } from "../../chain/index.ts";
import { type ExactEvmPayload, errorCodeFromRevert, type X402ErrorCode } from "../../protocol/index.ts";
import { aggregate3CallData, transferCallData } from "./abi.ts";
import { ReceiptTimeoutError, type RelayerClient, type RelayerLease, type RelayerPool } from "./relayer.ts";

function distributeCallData(asset: Address): Hex {
  return encodeFunctionData({ abi: payoutSplitterAbi, functionName: "distribute", args: [asset] });
}

export type SettlementOutcome =
  | { ok: true; transaction: Hash }
  | { ok: false; reason: X402ErrorCode; message?: string; transaction: Hash | "" };

type Job = {
  asset: Address;
  payload: ExactEvmPayload;
  callData: Hex;
  /** A PayoutSplitter being paid: its `distribute(asset)` goes in the same transaction. */
  splitter?: Address;
  resolve: (outcome: SettlementOutcome) => void;
};

export type BatcherOptions = {
  /** Most authorizations packed into one transaction. */
  maxBatch: number;
};

/** Gas one `transferWithAuthorization` takes inside a batch, with headroom for a fresh recipient and 1271. */
const GAS_PER_SETTLEMENT = 80_000n;
const GAS_PER_TRANSACTION = 40_000n;
/** A splitter's distribution to up to a handful of payees (~12k gas each). */
const GAS_PER_DISTRIBUTION = 150_000n;

const AUTHORIZATION_USED = toEventSelector("AuthorizationUsed(address,bytes32)");
const TRANSFER = toEventSelector("Transfer(address,address,uint256)");

/**
 * Settles EIP-3009 authorizations on chain. A settlement that finds a relayer key free goes at once, alone,
 * as a plain `transferWithAuthorization`; while every key is busy, settlements wait, and the next free key
 * takes all of them (up to `maxBatch`) in one Multicall3 `aggregate3` with per-call failure allowed. Each
 * authorization's result is read from the receipt's logs: it settled exactly when the token emitted both
 * `AuthorizationUsed(from, nonce)` and the matching `Transfer(from, to, value)`.
 */
export class SettlementBatcher {
  private readonly queue: Job[] = [];
  private pumping = false;

  /** Settlements waiting for a relayer key. */
  get queued(): number {
    return this.queue.length;
  }

  constructor(
    private readonly client: RelayerClient,
    private readonly relayers: RelayerPool,
    private readonly options: BatcherOptions,
  ) {}

  /**
   * Settles one authorization. With `splitter`, the payment goes to a PayoutSplitter and its distribution
   * rides in the same transaction with failure not allowed: every payee is credited, or the whole
   * transaction reverts and nobody (the payer included) is touched.
   */
  settle(asset: Address, payload: ExactEvmPayload, splitter?: Address): Promise<SettlementOutcome> {
    return new Promise((resolve) => {
      this.queue.push({ asset, payload, callData: transferCallData(payload), splitter, resolve });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const lease = await this.relayers.lease();
        const batch = this.queue.splice(0, this.options.maxBatch);
        void this.send(lease, batch);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async send(lease: RelayerLease, batch: Job[]): Promise<void> {
    const [first] = batch;
    if (!first) return;
    // A split payment's distribution follows its own transfer, so each payment is rounded by itself exactly
    // as the splitter's rule (and the payees' expectation) says, not as one sum per batch.
    const calls = batch.flatMap((job) => [
      { target: job.asset, allowFailure: true, callData: job.callData },
      ...(job.splitter
        ? [{ target: job.splitter, allowFailure: false, callData: distributeCallData(job.asset) }]
        : []),
    ]);
    const distributions = calls.length - batch.length;
    const tx =
      calls.length === 1
        ? { to: first.asset, data: first.callData, gas: GAS_PER_TRANSACTION + GAS_PER_SETTLEMENT }
        : {
            to: MULTICALL3_ADDRESS,
            data: aggregate3CallData(calls),
            gas:
              GAS_PER_TRANSACTION +
              GAS_PER_SETTLEMENT * BigInt(batch.length) +
              GAS_PER_DISTRIBUTION * BigInt(distributions),
          };
    let hash: Hash | "" = "";
    try {
      const sent = await lease.send(tx);
      hash = sent.hash;
      const receipt = await sent.receipt;
      await this.resolveFromReceipt(batch, receipt);
    } catch (error) {
      if (error instanceof ReceiptTimeoutError) {
        for (const job of batch)
          job.resolve({ ok: false, reason: "settlement_pending", transaction: error.hash });
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      for (const job of batch) {
        job.resolve({ ok: false, reason: "unexpected_settle_error", message, transaction: hash });
      }
    }
  }

  private async resolveFromReceipt(batch: readonly Job[], receipt: TransactionReceipt): Promise<void> {
    const settled = new ReceiptSettlements(receipt);
    await Promise.all(
      batch.map(async (job) =>
        job.resolve(await this.outcomeFrom(settled, receipt, job.asset, job.payload, job.callData)),
      ),
    );
  }

  /** The outcome of an authorization's transaction once its receipt exists (a pending settle, checked again). */
  outcomeOf(
    receipt: TransactionReceipt,
    asset: Address,
    payload: ExactEvmPayload,
  ): Promise<SettlementOutcome> {
    return this.outcomeFrom(
      new ReceiptSettlements(receipt),
      receipt,
      asset,
      payload,
      transferCallData(payload),
    );
  }

  private async outcomeFrom(
    settled: ReceiptSettlements,
    receipt: TransactionReceipt,
    asset: Address,
    payload: ExactEvmPayload,
    callData: Hex,
  ): Promise<SettlementOutcome> {
    if (settled.take(asset, payload)) return { ok: true, transaction: receipt.transactionHash };
    return { ...(await this.diagnose(asset, callData)), transaction: receipt.transactionHash };
  }

  /** Why an authorization did not settle: replay the call and map the token's revert text as the SDK does. */
  private async diagnose(
    asset: Address,
    callData: Hex,
  ): Promise<{ ok: false; reason: X402ErrorCode; message?: string }> {
    try {
      await this.client.call({ to: asset, data: callData });
      return {
        ok: false,
        reason: "invalid_exact_evm_transaction_failed",
        message: "the transfer did not take effect",
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, reason: errorCodeFromRevert(message), message };
    }
  }
}

/**
 * The authorizations a receipt shows as settled: the token emitted `AuthorizationUsed(from, nonce)` and a
 * `Transfer(from, to, value)` to match. Each transfer log vouches for one authorization only.
 */
class ReceiptSettlements {
  private readonly used = new Set<string>();
  private readonly transfers = new Map<string, number>();

  constructor(receipt: TransactionReceipt) {
    if (receipt.status !== "success") return;
    for (const log of receipt.logs) {
      const [topic, a, b] = log.topics;
      if (!a || !b) continue;
      const asset = log.address.toLowerCase();
      if (topic === AUTHORIZATION_USED) {
        this.used.add(`${asset}:${topicAddress(a)}:${b.toLowerCase()}`);
      } else if (topic === TRANSFER) {
        const key = `${asset}:${topicAddress(a)}:${topicAddress(b)}:${hexToBigInt(log.data)}`;
        this.transfers.set(key, (this.transfers.get(key) ?? 0) + 1);
      }
    }
  }

  take(asset: Address, { authorization: a }: ExactEvmPayload): boolean {
    const token = asset.toLowerCase();
    const from = a.from.toLowerCase();
    const transfer = `${token}:${from}:${a.to.toLowerCase()}:${BigInt(a.value)}`;
    const count = this.transfers.get(transfer) ?? 0;
    if (count === 0 || !this.used.has(`${token}:${from}:${a.nonce.toLowerCase()}`)) return false;
    this.transfers.set(transfer, count - 1);
    return true;
  }
}

function topicAddress(topic: Hex): string {
  return `0x${topic.slice(26)}`.toLowerCase();
}
