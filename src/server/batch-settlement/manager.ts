import type { Address, Hex } from "viem";
import type {
  Network,
  PaymentPayload,
  PaymentRequirements,
  ServerBatchPayload,
  SettleResponse,
  VoucherClaim,
} from "../../protocol/index.ts";
import { batchError } from "../../protocol/index.ts";
import type { FacilitatorClient } from "../facilitator-client.ts";
import type { BatchChannels } from "./channels.ts";
import type { ChannelRecord } from "./store.ts";

export type ChannelManagerOptions = {
  /**
   * How often unclaimed charges are claimed on chain. Default: a third of the withdrawal delay, so that no
   * charge stays unclaimed long enough for a payer's withdrawal to finalize past it; a longer interval
   * than the delay is refused.
   */
  claimIntervalSecs?: number;
  /** How often the claimed total is swept to the receivers (default: with every scheduled claim). */
  settleIntervalSecs?: number;
  /** How often idle channels are refunded (default: never on a schedule). */
  refundIntervalSecs?: number;
  /** A channel without requests for this long counts as idle (default 3600 s). */
  refundIdleSecs?: number;
  /** Rows per `{type:"claim"}` settle (default 100, as the official manager). */
  maxClaimsPerBatch?: number;
  /** When the server closes: claim and settle what is unclaimed (default true), refund idle channels (default false). */
  onClose?: { claimAndSettle?: boolean; refundIdle?: boolean };
  /** A scheduled job failed; by default the failure is dropped and the job runs again next interval. */
  onError?: (error: Error) => void;
};

export type ClaimResult = { receiver: Address; token: Address; vouchers: number; transaction: string };
export type SettleResult = { receiver: Address; token: Address; amount: string; transaction: string };
export type RefundResult = { channelId: Hex; amount: string; transaction: string };

const groupKey = (receiver: string, token: string) => `${receiver.toLowerCase()}:${token.toLowerCase()}`;

/** A facilitator answered `success: false`: `"<Op> failed: <reason> — <message>"`, as the official manager says it. */
export class ChannelOperationError extends Error {
  override name = "ChannelOperationError";
  constructor(
    readonly operation: "Claim" | "Settle" | "Refund",
    readonly response: SettleResponse,
  ) {
    super(`${operation} failed: ${response.errorReason ?? "unknown"} — ${response.errorMessage ?? ""}`);
  }
}

/**
 * The receiver's side of the channels: claims the charged vouchers on chain in batches, sweeps the claimed
 * totals to the receivers, and refunds what idle channels hold beyond their charges, all through the
 * facilitator's `/settle`. Jobs run one at a time, whether scheduled, urgent or called.
 */
export class ChannelManager {
  private readonly timers: NodeJS.Timeout[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  readonly claimIntervalSecs: number;

  constructor(
    private readonly channels: BatchChannels,
    private readonly facilitator: FacilitatorClient,
    private readonly network: Network,
    readonly withdrawDelay: number,
    private readonly options: ChannelManagerOptions = {},
  ) {
    this.claimIntervalSecs = options.claimIntervalSecs ?? Math.floor(withdrawDelay / 3);
    if (!(this.claimIntervalSecs > 0 && this.claimIntervalSecs < withdrawDelay)) {
      throw new RangeError(
        `claimIntervalSecs must be positive and below the withdrawal delay (${withdrawDelay} s): a payer could withdraw past unclaimed charges`,
      );
    }
  }

  /** Starts the schedules; timers do not keep the process alive. */
  start(): void {
    const every = (secs: number | undefined, job: () => Promise<unknown>) => {
      if (secs === undefined) return;
      const timer = setInterval(() => {
        this.enqueue(job).catch((error: Error) => this.options.onError?.(error));
      }, secs * 1000);
      this.timers.push(timer.unref());
    };
    const separateSettle = this.options.settleIntervalSecs !== undefined;
    every(this.claimIntervalSecs, () => (separateSettle ? this.claimNow() : this.claimAndSettleNow()));
    every(this.options.settleIntervalSecs, () => this.settleNow());
    every(this.options.refundIntervalSecs, () => this.refundIdleNow(this.idleSecs));
  }

  /** Stops the schedules, waits for the running job, and does the configured shutdown work. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    const { claimAndSettle = true, refundIdle = false } = this.options.onClose ?? {};
    await this.enqueue(async () => {
      try {
        if (refundIdle) await this.refundIdleNow(this.idleSecs);
      } finally {
        // A refund claims its channel's charges too, so they are settled even when only refunds were asked for.
        if (claimAndSettle || refundIdle) await this.claimAndSettleNow();
      }
    });
  }

  /** A payer started a withdrawal: claim that channel now rather than at the next interval. */
  claimSoon(channelId: Hex): void {
    if (this.closed) return;
    this.enqueue(() => this.claimNow([channelId])).catch((error: Error) => this.options.onError?.(error));
  }

  /** Claims every charge not yet claimed (or only these channels'), in batches of `maxClaimsPerBatch`. */
  claim(channelIds?: readonly Hex[]): Promise<ClaimResult[]> {
    return this.enqueue(() => this.claimNow(channelIds));
  }

  /** Sweeps each receiver's claimed-but-unsettled total to it. */
  settle(): Promise<SettleResult[]> {
    return this.enqueue(() => this.settleNow());
  }

  claimAndSettle(): Promise<{ claims: ClaimResult[]; settles: SettleResult[] }> {
    return this.enqueue(() => this.claimAndSettleNow());
  }

  /** Refunds what these channels (default: all) hold beyond their charges, claiming the charges with it. */
  refund(channelIds?: readonly Hex[]): Promise<RefundResult[]> {
    return this.enqueue(async () => {
      const wanted = channelIds?.map((id) => id.toLowerCase());
      const records = (await this.channels.store.list()).filter(
        (r) => !wanted || wanted.includes(r.channelId.toLowerCase()),
      );
      return this.refundRecords(records);
    });
  }

  /** Refunds the channels without a request for `idleSecs` (default `refundIdleSecs`). */
  refundIdle(idleSecs = this.idleSecs): Promise<RefundResult[]> {
    return this.enqueue(() => this.refundIdleNow(idleSecs));
  }

  private get idleSecs(): number {
    return this.options.refundIdleSecs ?? 3600;
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private requirements(receiver: Address, token: Address): PaymentRequirements {
    return {
      scheme: "batch-settlement",
      network: this.network,
      asset: token,
      amount: "0",
      payTo: receiver,
      maxTimeoutSeconds: 0,
      extra: {},
    };
  }

  private submit(receiver: Address, token: Address, payload: ServerBatchPayload): Promise<SettleResponse> {
    const requirements = this.requirements(receiver, token);
    const paymentPayload: PaymentPayload = { x402Version: 2, accepted: requirements, payload };
    return this.facilitator.settle({ x402Version: 2, paymentPayload, paymentRequirements: requirements });
  }

  private async claimAndSettleNow(): Promise<{ claims: ClaimResult[]; settles: SettleResult[] }> {
    const claims = await this.claimNow();
    return { claims, settles: await this.settleNow() };
  }

  private async claimNow(channelIds?: readonly Hex[]): Promise<ClaimResult[]> {
    const wanted = channelIds?.map((id) => id.toLowerCase());
    const groups = new Map<
      string,
      { receiver: Address; token: Address; rows: { channelId: Hex; row: VoucherClaim }[] }
    >();
    for (const record of await this.channels.store.list()) {
      if (wanted && !wanted.includes(record.channelId.toLowerCase())) continue;
      if (BigInt(record.chargedCumulativeAmount) <= BigInt(record.totalClaimed)) continue;
      const { receiver, token } = record.channelConfig;
      const key = groupKey(receiver, token);
      const group = groups.get(key) ?? { receiver, token, rows: [] };
      group.rows.push({ channelId: record.channelId, row: claimRow(record) });
      groups.set(key, group);
    }
    const results: ClaimResult[] = [];
    const size = this.options.maxClaimsPerBatch ?? 100;
    for (const { receiver, token, rows } of groups.values()) {
      for (let i = 0; i < rows.length; i += size) {
        const chunk = rows.slice(i, i + size);
        const claims = chunk.map((c) => c.row);
        const signature = await this.channels.signClaims(claims);
        const response = await this.submit(receiver, token, {
          type: "claim",
          claims,
          ...(signature ? { claimAuthorizerSignature: signature } : {}),
        });
        if (!response.success) throw new ChannelOperationError("Claim", response);
        for (const { channelId, row } of chunk) await this.booked(channelId, row.totalClaimed);
        results.push({ receiver, token, vouchers: chunk.length, transaction: response.transaction });
      }
    }
    return results;
  }

  /** A claimed row raises the record's claimed total; a later charge on the channel is left to claim. */
  private async booked(channelId: Hex, totalClaimed: string): Promise<void> {
    await this.channels.store.update(channelId, (current) =>
      current && BigInt(current.totalClaimed) < BigInt(totalClaimed) ? { ...current, totalClaimed } : current,
    );
  }

  private async settleNow(): Promise<SettleResult[]> {
    const pairs = new Map<string, { receiver: Address; token: Address }>();
    for (const record of await this.channels.store.list()) {
      const { receiver, token } = record.channelConfig;
      if (BigInt(record.totalClaimed) > 0n) pairs.set(groupKey(receiver, token), { receiver, token });
    }
    const results: SettleResult[] = [];
    for (const { receiver, token } of pairs.values()) {
      const response = await this.submit(receiver, token, { type: "settle", receiver, token });
      if (!response.success) {
        if (response.errorReason === batchError("nothing_to_settle")) continue;
        throw new ChannelOperationError("Settle", response);
      }
      results.push({ receiver, token, amount: response.amount ?? "0", transaction: response.transaction });
    }
    return results;
  }

  private async refundIdleNow(idleSecs: number): Promise<RefundResult[]> {
    const cutoff = Date.now() - idleSecs * 1000;
    const idle = (await this.channels.store.list()).filter((r) => r.lastRequestAt <= cutoff);
    return this.refundRecords(idle);
  }

  private async refundRecords(records: readonly ChannelRecord[]): Promise<RefundResult[]> {
    const now = Date.now();
    const results: RefundResult[] = [];
    for (const record of records) {
      if (record.reservation && record.reservation.expiresAt > now) continue;
      const amount = BigInt(record.balance) - BigInt(record.chargedCumulativeAmount);
      if (amount <= 0n) continue;
      const claims =
        BigInt(record.chargedCumulativeAmount) > BigInt(record.totalClaimed) ? [claimRow(record)] : [];
      const { channelId, channelConfig } = record;
      const response = await this.submit(channelConfig.receiver, channelConfig.token, {
        type: "refund",
        channelConfig,
        voucher: { channelId, maxClaimableAmount: record.signedMaxClaimable, signature: record.signature },
        amount: amount.toString(),
        refundNonce: record.refundNonce,
        claims,
        ...(await this.channels.signatures(channelId, record.refundNonce, amount.toString(), claims)),
      });
      if (!response.success) throw new ChannelOperationError("Refund", response);
      await this.channels.afterRefund(
        channelId,
        response.extra?.channelState,
        claims.length > 0 ? record.chargedCumulativeAmount : record.totalClaimed,
      );
      results.push({
        channelId,
        amount: response.amount ?? amount.toString(),
        transaction: response.transaction,
      });
    }
    return results;
  }
}

/** The claim of a record's charged total under its latest voucher. */
function claimRow(record: ChannelRecord): VoucherClaim {
  return {
    voucher: { channel: record.channelConfig, maxClaimableAmount: record.signedMaxClaimable },
    signature: record.signature,
    totalClaimed: record.chargedCumulativeAmount,
  };
}
