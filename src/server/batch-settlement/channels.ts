import { randomUUID } from "node:crypto";
import { type Address, type Hex, type LocalAccount, zeroAddress } from "viem";
import {
  type BatchPayload,
  batchError,
  type ChannelState,
  chainIdFromNetwork,
  channelIdOf,
  claimBatchTypedData,
  type Network,
  type PaymentPayload,
  type PaymentRequirements,
  recoverAddress,
  refundTypedData,
  type SettleResponse,
  type VerifyResponse,
  type VoucherClaim,
  voucherDigest,
} from "../../protocol/index.ts";
import type { FacilitatorClient } from "../facilitator-client.ts";
import type { ChannelRecord, ChannelStore } from "./store.ts";

/** Holds the receiver-authorizer key: signs claim batches and refunds so the facilitator need not. */
export type ReceiverAuthorizer = Pick<LocalAccount, "address" | "signTypedData">;

/** A `/verify` or `/settle` body of a batch-settlement payment (x402 v2 only). */
export type BatchRequest = {
  x402Version: 2;
  paymentPayload: PaymentPayload;
  paymentRequirements: PaymentRequirements;
};

/** A verified request holding its channel until its charge is decided. */
export type ChannelSession = {
  readonly payload: BatchPayload;
  readonly request: BatchRequest;
  readonly channelId: Hex;
  readonly reservationId: string;
};

/** Why a request is refused before its handler runs; `channel` rides along in a corrective 402. */
export type Refusal = { reason: string; message: string; channel?: ChannelRecord };

export type Begun = { kind: "refused"; refusal: Refusal } | { kind: "reserved"; session: ChannelSession };

const MIN_RESERVATION_MS = 5_000;
const MAX_RESERVATION_MS = 600_000;

/** The official server's default: a third of the withdrawal delay, within [30 s, 5 min]. */
export function defaultOnchainStateTtlMs(withdrawDelay: number): number {
  return Math.min(300_000, Math.max(30_000, (withdrawDelay * 1000) / 3));
}

/** The channel state a response or a corrective 402 carries. */
export function channelStateOf(
  record: ChannelRecord,
  charged = record.chargedCumulativeAmount,
): ChannelState {
  return {
    channelId: record.channelId,
    balance: record.balance,
    totalClaimed: record.totalClaimed,
    withdrawRequestedAt: record.withdrawRequestedAt,
    refundNonce: record.refundNonce,
    chargedCumulativeAmount: charged,
  };
}

/** `extra` of the batch accept in a corrective 402: what the client needs to resume from the server's books. */
export function correctiveExtra(record: ChannelRecord): Record<string, unknown> {
  return {
    channelState: channelStateOf(record),
    voucherState: { signedMaxClaimable: record.signedMaxClaimable, signature: record.signature },
  };
}

const refused = (suffix: string, message: string, channel?: ChannelRecord): Begun => ({
  kind: "refused",
  refusal: { reason: batchError(suffix), message, ...(channel ? { channel } : {}) },
});

const failedSettle = (network: Network, suffix: string, message: string, payer?: string): SettleResponse => ({
  success: false,
  errorReason: batchError(suffix),
  errorMessage: message,
  transaction: "",
  network,
  ...(payer ? { payer } : {}),
});

function text(value: unknown, fallback: string): string {
  if (typeof value === "string" && /^\d+$/.test(value)) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return String(value);
  return fallback;
}

function seconds(value: unknown, fallback: number): number {
  const parsed = Number(text(value, String(fallback)));
  return Number.isSafeInteger(parsed) ? parsed : fallback;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The on-chain fields a facilitator reported (`/verify`'s `extra`, `/settle`'s `extra.channelState`). */
function mirrored(state: unknown, fallback: ChannelRecord | undefined) {
  const s = isRecord(state) ? state : {};
  return {
    balance: text(s.balance, fallback?.balance ?? "0"),
    totalClaimed: text(s.totalClaimed, fallback?.totalClaimed ?? "0"),
    withdrawRequestedAt: seconds(s.withdrawRequestedAt, fallback?.withdrawRequestedAt ?? 0),
    refundNonce: text(s.refundNonce, fallback?.refundNonce ?? "0"),
  };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const maxOf = (a: string, b: string) => (BigInt(a) > BigInt(b) ? a : b);

export type BatchChannelsOptions = {
  network: Network;
  facilitator: FacilitatorClient;
  store: ChannelStore;
  receiverAuthorizer?: ReceiverAuthorizer;
  onchainStateTtlMs: number;
  /** Told of a channel whose payer started a withdrawal while it holds unclaimed charges. */
  onWithdrawal?: (channelId: Hex) => void;
};

/**
 * The server side of batch-settlement payments (x402-schemes §5.4): charges accumulate against vouchers
 * in the channel store, and only deposits and refunds reach the chain.
 */
export class BatchChannels {
  readonly chainId: number;

  constructor(private readonly options: BatchChannelsOptions) {
    this.chainId = chainIdFromNetwork(options.network);
  }

  get store(): ChannelStore {
    return this.options.store;
  }

  /**
   * Checks the payment against the channel's books, verifies it (locally for an EOA voucher on fresh
   * state, else through the facilitator) and reserves the channel. Throws a `FacilitatorError` when
   * `/verify` gives no answer. `payload` is the request's, already read.
   */
  async begin(request: BatchRequest, payload: BatchPayload): Promise<Begun> {
    const requirements = request.paymentRequirements;
    const { channelConfig: config, voucher } = payload;
    const channelId = voucher.channelId;
    if (!same(channelIdOf(this.chainId, config), channelId)) {
      return refused("channel_id_mismatch", "voucher.channelId is not the channel config's id");
    }
    const price = BigInt(requirements.amount);
    const max = BigInt(voucher.maxClaimableAmount);
    const isRefund = payload.type === "refund";
    const expectedMax = (base: bigint) => (isRefund ? base : base + price);
    // Without a record (first contact, or lost books) the voucher's own base is taken, as the official
    // server does: the facilitator still checks it against the chain's claimed total.
    const inferredBase = isRefund ? max : max >= price ? max - price : 0n;
    let record: ChannelRecord | undefined;
    try {
      record = await this.store.get(channelId);
    } catch (error) {
      return refused("verification_state_unavailable", (error as Error).message);
    }
    const base = record ? BigInt(record.chargedCumulativeAmount) : inferredBase;
    if (max !== expectedMax(base)) {
      return refused(
        "cumulative_amount_mismatch",
        "the voucher's base is not what this server has charged",
        record ?? this.provisional(payload, base),
      );
    }

    const now = Date.now();
    const localVerdict =
      payload.type === "voucher" && record && this.isFresh(record, now)
        ? await this.verifyLocally(payload, requirements, record)
        : undefined;
    const verdict = localVerdict ?? (await this.options.facilitator.verify(request));
    if (!verdict.isValid) {
      return {
        kind: "refused",
        refusal: {
          reason: verdict.invalidReason ?? batchError("payload_type"),
          message: verdict.invalidMessage ?? "the facilitator refused the payment",
        },
      };
    }

    const reservationId = randomUUID();
    const timeoutMs = requirements.maxTimeoutSeconds * 1000;
    const expiresAt = now + Math.min(MAX_RESERVATION_MS, Math.max(MIN_RESERVATION_MS, timeoutMs));
    let outcome: Begun | undefined;
    let reserved: ChannelRecord | undefined;
    try {
      reserved = await this.store.update(channelId, (current) => {
        if (current?.reservation && current.reservation.expiresAt > now) {
          outcome = refused("channel_busy", "another request on this channel is in progress");
          return current;
        }
        const currentBase = current ? BigInt(current.chargedCumulativeAmount) : inferredBase;
        if (max !== expectedMax(currentBase)) {
          outcome = refused(
            "cumulative_amount_mismatch",
            "the channel was charged while this request was verified",
            current ?? this.provisional(payload, currentBase),
          );
          return current;
        }
        const chain = localVerdict ? undefined : mirrored(verdict.extra, current);
        return {
          channelId,
          channelConfig: config,
          chargedCumulativeAmount: currentBase.toString(),
          // The voucher on record stays the last one charged against until this request is charged.
          signedMaxClaimable: current?.signedMaxClaimable ?? voucher.maxClaimableAmount,
          signature: current?.signature ?? voucher.signature,
          balance: chain?.balance ?? current?.balance ?? "0",
          totalClaimed: chain?.totalClaimed ?? current?.totalClaimed ?? "0",
          withdrawRequestedAt: chain?.withdrawRequestedAt ?? current?.withdrawRequestedAt ?? 0,
          refundNonce: chain?.refundNonce ?? current?.refundNonce ?? "0",
          ...(chain
            ? { onchainSyncedAt: now }
            : current?.onchainSyncedAt
              ? { onchainSyncedAt: current.onchainSyncedAt }
              : {}),
          lastRequestAt: now,
          reservation: { id: reservationId, expiresAt },
        };
      });
    } catch (error) {
      return refused("verification_state_unavailable", (error as Error).message);
    }
    if (outcome || !reserved) return outcome ?? refused("missing_channel", "the reservation was not stored");
    return { kind: "reserved", session: { payload, request, channelId, reservationId } };
  }

  /**
   * A payer who started a withdrawal takes back, once its delay elapses, whatever is not claimed by then:
   * the charges booked so far must be claimed now, not at the next scheduled claim.
   */
  private watchWithdrawal(record: ChannelRecord): void {
    if (
      record.withdrawRequestedAt > 0 &&
      BigInt(record.chargedCumulativeAmount) > BigInt(record.totalClaimed)
    ) {
      this.options.onWithdrawal?.(record.channelId);
    }
  }

  /** Ends a request that was not charged (its handler failed, or the client left). */
  async release(session: ChannelSession, unsynced = false): Promise<void> {
    await this.store.update(session.channelId, (current) => {
      if (current?.reservation?.id !== session.reservationId) return current;
      const { reservation: _, ...rest } = current;
      if (!unsynced) return rest;
      // A deposit whose outcome is unknown: the mirrored balance may be wrong, so verify afresh next time.
      const { onchainSyncedAt: __, ...stale } = rest;
      return stale;
    });
  }

  /**
   * Charges `amount` (the price, or what the handler metered) for a served voucher or deposit request.
   * A voucher's charge is only booked: no facilitator call. A deposit goes to the facilitator's `/settle`.
   * Throws a `FacilitatorError` when `/settle` gives no answer.
   */
  async charge(session: ChannelSession, amount: bigint): Promise<SettleResponse> {
    const { network } = this.options;
    const { payload, channelId, reservationId } = session;
    const payer = payload.channelConfig.payer.toLowerCase();
    const signedMax = BigInt(payload.voucher.maxClaimableAmount);
    if (payload.type === "voucher") {
      let failure: SettleResponse | undefined;
      let previous: ChannelRecord | undefined;
      const committed = await this.store.update(channelId, (current) => {
        if (!current) {
          failure = failedSettle(network, "missing_channel", "no record of this channel", payer);
          return current;
        }
        if (current.reservation?.id !== reservationId) {
          failure = failedSettle(network, "channel_busy", "the channel's reservation was lost", payer);
          return current;
        }
        const { reservation: _, ...rest } = current;
        const charged = BigInt(current.chargedCumulativeAmount) + amount;
        if (charged > signedMax) {
          failure = failedSettle(
            network,
            "charge_exceeds_signed_cumulative",
            `charging ${charged} exceeds the voucher's ${signedMax}`,
            payer,
          );
          return rest;
        }
        previous = current;
        return {
          ...rest,
          chargedCumulativeAmount: charged.toString(),
          signedMaxClaimable: payload.voucher.maxClaimableAmount,
          signature: payload.voucher.signature,
          lastRequestAt: Date.now(),
        };
      });
      if (failure || !committed || !previous) {
        return failure ?? failedSettle(network, "missing_channel", "no record of this channel", payer);
      }
      this.watchWithdrawal(committed);
      return {
        success: true,
        payer,
        transaction: "",
        network,
        amount: "",
        extra: {
          chargedAmount: amount.toString(),
          channelState: channelStateOf(previous, committed.chargedCumulativeAmount),
        },
      };
    }
    if (payload.type !== "deposit") throw new TypeError("a refund is not charged");

    // Checked before the deposit is made: a charge the voucher does not cover must not move money first.
    const before = await this.store.get(channelId);
    if (before?.reservation?.id !== reservationId) {
      return failedSettle(network, "channel_busy", "the channel's reservation was lost", payer);
    }
    if (BigInt(before.chargedCumulativeAmount) + amount > signedMax) {
      await this.release(session);
      return failedSettle(
        network,
        "charge_exceeds_signed_cumulative",
        `charging ${BigInt(before.chargedCumulativeAmount) + amount} exceeds the voucher's ${signedMax}`,
        payer,
      );
    }
    const metered: BatchRequest = {
      ...session.request,
      paymentRequirements: { ...session.request.paymentRequirements, amount: amount.toString() },
    };
    let settlement: SettleResponse;
    try {
      settlement = await this.options.facilitator.settle(metered);
    } catch (error) {
      await this.release(session, true);
      throw error;
    }
    if (!settlement.success) {
      await this.release(session, true);
      return settlement;
    }
    const reported = settlement.extra?.channelState;
    const now = Date.now();
    const committed = await this.store.update(channelId, (current) => {
      const base = current ?? before;
      const { reservation: _, ...rest } = base;
      return {
        ...rest,
        ...mirrored(reported, base),
        chargedCumulativeAmount: (BigInt(base.chargedCumulativeAmount) + amount).toString(),
        signedMaxClaimable: payload.voucher.maxClaimableAmount,
        signature: payload.voucher.signature,
        onchainSyncedAt: now,
        lastRequestAt: now,
      };
    });
    if (committed) this.watchWithdrawal(committed);
    return {
      ...settlement,
      extra: {
        ...settlement.extra,
        chargedAmount: amount.toString(),
        channelState: {
          ...(isRecord(reported) ? reported : channelStateOf(committed ?? before)),
          chargedCumulativeAmount: committed?.chargedCumulativeAmount,
        },
      },
    };
  }

  /**
   * A client's refund request (zero-charge voucher at the charged total): enriched with a claim of what was
   * charged, the refund nonce and, when this server holds the key, the authorizer's signatures, then
   * settled through the facilitator. Throws a `FacilitatorError` when `/settle` gives no answer.
   */
  async refund(session: ChannelSession): Promise<SettleResponse> {
    const { network } = this.options;
    const { payload, channelId, reservationId } = session;
    if (payload.type !== "refund") throw new TypeError("not a refund");
    const payer = payload.channelConfig.payer.toLowerCase();
    const record = await this.store.get(channelId);
    const refuse = async (suffix: string, message: string) => {
      await this.release(session);
      return failedSettle(network, suffix, message, payer);
    };
    if (!record) return failedSettle(network, "missing_channel", "no record of this channel", payer);
    if (record.reservation?.id !== reservationId) {
      return failedSettle(network, "channel_busy", "the channel's reservation was lost", payer);
    }
    if (BigInt(payload.voucher.maxClaimableAmount) !== BigInt(record.chargedCumulativeAmount)) {
      return refuse("cumulative_amount_mismatch", "a refund voucher must be for the charged total");
    }
    // The official server also demands the stored signature byte for byte, which holds there because it
    // stores the refund voucher on reservation. Here the record keeps the last charged voucher (maybe signed
    // for more than was charged, when metered); the refund voucher itself passed the facilitator's /verify.
    const remainder = BigInt(record.balance) - BigInt(record.chargedCumulativeAmount);
    if (remainder <= 0n) return refuse("refund_no_balance", "nothing beyond the charges is left");
    if (payload.amount !== undefined && BigInt(payload.amount) <= 0n) {
      return refuse("refund_amount_invalid", "a refund amount must be positive");
    }
    const amount = payload.amount ?? remainder.toString();
    const claims: VoucherClaim[] = [
      {
        voucher: { channel: payload.channelConfig, maxClaimableAmount: payload.voucher.maxClaimableAmount },
        signature: payload.voucher.signature,
        totalClaimed: record.chargedCumulativeAmount,
      },
    ];
    const enriched = {
      ...payload,
      amount,
      refundNonce: record.refundNonce,
      claims,
      ...(await this.signatures(channelId, record.refundNonce, amount, claims)),
    };
    const request: BatchRequest = {
      ...session.request,
      paymentPayload: { ...session.request.paymentPayload, payload: enriched },
    };
    let settlement: SettleResponse;
    try {
      settlement = await this.options.facilitator.settle(request);
    } catch (error) {
      await this.release(session, true);
      throw error;
    }
    if (!settlement.success) {
      await this.release(session, true);
      return settlement;
    }
    const reported = settlement.extra?.channelState;
    const after = await this.afterRefund(channelId, reported, record.chargedCumulativeAmount, reservationId);
    return {
      ...settlement,
      extra: {
        ...settlement.extra,
        channelState: {
          ...(isRecord(reported) ? reported : after ? channelStateOf(after) : {}),
          chargedCumulativeAmount: record.chargedCumulativeAmount,
        },
      },
    };
  }

  /**
   * Books a settled refund. The record is kept (unlike the official server, which deletes it) so that the
   * channel manager still settles what the refund's claim row moved to the receiver's claimed total.
   */
  async afterRefund(
    channelId: Hex,
    reported: unknown,
    claimedUpTo: string,
    reservationId?: string,
  ): Promise<ChannelRecord | undefined> {
    const now = Date.now();
    return this.store.update(channelId, (current) => {
      if (!current) return current;
      const keep =
        current.reservation && current.reservation.id !== reservationId
          ? { reservation: current.reservation }
          : {};
      const { reservation: _, ...rest } = current;
      const chain = mirrored(reported, current);
      return {
        ...rest,
        ...chain,
        totalClaimed: maxOf(chain.totalClaimed, claimedUpTo),
        onchainSyncedAt: now,
        ...keep,
      };
    });
  }

  /** The receiver authorizer's signatures over a refund and its claim rows, when this server holds the key. */
  async signatures(
    channelId: Hex,
    refundNonce: string,
    amount: string,
    claims: readonly VoucherClaim[],
  ): Promise<{ refundAuthorizerSignature?: Hex; claimAuthorizerSignature?: Hex }> {
    const signer = this.options.receiverAuthorizer;
    if (!signer) return {};
    return {
      refundAuthorizerSignature: await signer.signTypedData(
        refundTypedData(this.chainId, channelId, BigInt(refundNonce), BigInt(amount)),
      ),
      ...(claims.length > 0 ? { claimAuthorizerSignature: await this.signClaims(claims) } : {}),
    };
  }

  async signClaims(claims: readonly VoucherClaim[]): Promise<Hex | undefined> {
    const signer = this.options.receiverAuthorizer;
    return signer ? signer.signTypedData(claimBatchTypedData(this.chainId, claims)) : undefined;
  }

  private isFresh(record: ChannelRecord, now: number): boolean {
    return (
      record.onchainSyncedAt !== undefined && now - record.onchainSyncedAt <= this.options.onchainStateTtlMs
    );
  }

  /** The facilitator's voucher checks on mirrored state; undefined sends the voucher to `/verify` instead. */
  private async verifyLocally(
    payload: BatchPayload,
    requirements: PaymentRequirements,
    record: ChannelRecord,
  ): Promise<VerifyResponse | undefined> {
    const config = payload.channelConfig;
    // A zero authorizer means the payer signs, maybe by ERC-1271: only the chain can check that.
    if (same(config.payerAuthorizer, zeroAddress)) return undefined;
    const payer = config.payer;
    const invalid = (suffix: string): VerifyResponse => ({
      isValid: false,
      invalidReason: batchError(suffix),
      payer,
    });
    const extra = requirements.extra ?? {};
    if (!same(config.receiver, requirements.payTo)) return invalid("receiver_mismatch");
    if (
      typeof extra.receiverAuthorizer !== "string" ||
      !same(config.receiverAuthorizer, extra.receiverAuthorizer)
    ) {
      return invalid("receiver_authorizer_mismatch");
    }
    if (!same(config.token, requirements.asset)) return invalid("token_mismatch");
    if (extra.withdrawDelay !== undefined && Number(extra.withdrawDelay) !== config.withdrawDelay) {
      return invalid("withdraw_delay_mismatch");
    }
    const max = BigInt(payload.voucher.maxClaimableAmount);
    let signer: Address;
    try {
      // Native secp256k1: viem's recovery (noble) took ~2 ms of a voucher request's ~2.8 ms. Low-s only, as
      // the contract's ECDSA.recoverCalldata takes it.
      signer = recoverAddress(
        voucherDigest(this.chainId, payload.voucher.channelId, max),
        payload.voucher.signature,
      );
    } catch {
      return invalid("voucher_signature");
    }
    if (!same(signer, config.payerAuthorizer)) return invalid("voucher_signature");
    if (max > BigInt(record.balance)) return invalid("cumulative_exceeds_balance");
    if (max <= BigInt(record.totalClaimed)) return invalid("cumulative_below_claimed");
    // No `extra`: the channel's mirrored state is what this check just used, and stays as it is.
    return { isValid: true, payer };
  }

  /** What a corrective 402 says when the server has no record: the voucher's own base, nothing on chain known. */
  private provisional(payload: BatchPayload, base: bigint): ChannelRecord {
    return {
      channelId: payload.voucher.channelId,
      channelConfig: payload.channelConfig,
      chargedCumulativeAmount: base.toString(),
      signedMaxClaimable: payload.voucher.maxClaimableAmount,
      signature: payload.voucher.signature,
      balance: "0",
      totalClaimed: "0",
      withdrawRequestedAt: 0,
      refundNonce: "0",
      lastRequestAt: Date.now(),
    };
  }
}
