import type { Hex } from "viem";
import type { Eip3009Domain } from "../protocol/index.ts";
import { PaymentBook, type PaymentRecord, type SignedPayment } from "./payment-book.ts";
import type { SpendingPolicy } from "./policy.ts";
import { PolicyError } from "./refusal.ts";

export type { PaymentRecord, SignedPayment } from "./payment-book.ts";

const DAY_MS = 86_400_000;

// Math.min does not take bigints.
const smaller = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * An authorization the agent signed that its server did not accept and that is not proven dead: whoever
 * holds it can still settle it until `validBefore`, so every budget keeps counting it.
 */
export type OutstandingAuthorization = SignedPayment & {
  /** `Date.now()` when it was signed. */
  signedAt: number;
};

/**
 * One authorization's claim on the budgets, taken before it is signed. It ends as released (never
 * signed), spent (accepted, or used on chain) or dead (proven unusable); until then it counts.
 */
export type Claim = {
  /**
   * The authorization for `payment` is about to be signed: from now on only the chain can free it. Its
   * value replaces the reserved amount; a larger one must fit the budgets too.
   */
  sign(payment: SignedPayment, domain: Eip3009Domain): void;
  /** The server served the paid request. */
  accept(transaction: Hex | undefined): void;
  /** The exchange ended without acceptance: outstanding until the chain says otherwise. */
  keep(): void;
  /** Nothing was signed: the money, the day's share and the URL's slot are free again. */
  release(): void;
  /**
   * The claim's money went into (or is promised against) a payment channel: it stays reserved, now as
   * the channel's {@link ChannelFunds.held}, until a charge spends it or a refund gives it back.
   */
  hold(funds: ChannelFunds): void;
};

/**
 * One payment channel in the books. How channels are accounted:
 * - A deposit is money at risk from the moment its authorization is signed: its claim reserves the whole
 *   deposit, against every budget, like any authorization (and stays outstanding if its server refuses).
 *   Once the server accepts it, the claim's money becomes `held`: still part of `reserved`, now owned by
 *   the channel rather than by a signature.
 * - Vouchers are cumulative: a voucher up to `maxClaimableAmount` commits only what goes beyond `cover`,
 *   the cumulative amount the books already count (spent charges plus held money, plus whatever earlier
 *   books covered for a channel adopted from a server). Within a deposit that is nothing.
 * - Each request's charge moves from `held` to `spent`, one payment record per request, so `payments`
 *   shows what every request cost and `spent` stays their sum.
 * - A refund (or a finalized withdrawal) gives held money back to `reserved`'s budgets, and to the days
 *   it was taken from.
 * So `spent + reserved` counts every deposit in full until it is refunded, and never less than what
 * the receiver could claim with the agent's vouchers.
 */
export type ChannelFunds = {
  /** Part of the ledger's `reserved`: the channel's money neither charged nor returned. */
  held: bigint;
  /** The cumulative claim level the books count: charges spent plus `held`, from the channel's basis. */
  cover: bigint;
  /** How much of `held` each UTC day reserved, so refunds give the days back what they took. */
  days: Map<number, bigint>;
};

export type LedgerLimits = Pick<SpendingPolicy, "budgetPerRun" | "budgetPerDay" | "maxPaymentsPerUrl">;

/** A signed authorization the ledger still counts as reserved. */
type Live = {
  payment: SignedPayment;
  domain: Eip3009Domain;
  signedAt: number;
  /** False while its request is in flight: only ended exchanges are reconciled or cancelled. */
  outstanding: boolean;
  /** A transaction that cancels it, sent but not yet seen mined. */
  cancelTransaction?: Hex;
  settle(how: "used" | "dead"): void;
};

/** An outstanding authorization, with what reconciling and cancelling it needs. */
export type OutstandingEntry = {
  authorization: OutstandingAuthorization;
  domain: Eip3009Domain;
  cancelTransaction: Hex | undefined;
};

/**
 * One agent's budgets and books. Reservation is synchronous, so concurrent requests of one agent (one
 * event loop) can never together reserve more than a budget allows.
 */
export class SpendLedger {
  /** Sum of {@link payments}. */
  spent = 0n;
  /** Claims not yet signed, and signed authorizations neither spent nor proven dead. */
  reserved = 0n;
  private readonly book = new PaymentBook();
  private readonly days = new Map<number, bigint>();
  private readonly perKey = new Map<string, number>();
  /** By lowercase nonce. */
  private readonly live = new Map<string, Live>();

  constructor(private readonly limits: LedgerLimits) {}

  reserve(key: string, amount: bigint): Claim {
    const { maxPaymentsPerUrl } = this.limits;
    const payments = this.perKey.get(key) ?? 0;
    if (maxPaymentsPerUrl !== undefined && payments >= maxPaymentsPerUrl) {
      throw new PolicyError("max_payments_per_url", `already ${payments} payments for ${key}`);
    }
    // Days are UTC: the same boundary for every agent, whatever the host's time zone.
    const day = Math.floor(Date.now() / DAY_MS);
    this.checkBudgets(day, amount);
    this.days.set(day, (this.days.get(day) ?? 0n) + amount);
    this.perKey.set(key, payments + 1);
    this.reserved += amount;

    let state: "reserved" | "signed" | "ended" = "reserved";
    let live: Live | undefined;
    const free = () => {
      this.reserved -= amount;
      this.days.set(day, (this.days.get(day) ?? 0n) - amount);
      const count = (this.perKey.get(key) ?? 1) - 1;
      if (count === 0) this.perKey.delete(key);
      else this.perKey.set(key, count);
    };
    const spend = (transaction: Hex | undefined, confirmedBy: PaymentRecord["confirmedBy"]) => {
      if (!live) return;
      this.live.delete(live.payment.nonce.toLowerCase());
      this.reserved -= amount;
      this.spent += amount;
      this.book.add(live.payment, transaction, confirmedBy, Date.now());
    };
    return {
      sign: (payment, domain) => {
        if (state !== "reserved") throw new Error("a claim signs one authorization");
        const extra = payment.amount - amount;
        if (extra > 0n) this.checkBudgets(day, extra);
        this.reserved += extra;
        this.days.set(day, (this.days.get(day) ?? 0n) + extra);
        amount = payment.amount;
        state = "signed";
        live = {
          payment,
          domain,
          signedAt: Date.now(),
          outstanding: false,
          settle: (how) => {
            if (state === "ended" || !live) return;
            state = "ended";
            this.live.delete(live.payment.nonce.toLowerCase());
            if (how === "used") spend(undefined, "chain");
            else free();
          },
        };
        this.live.set(payment.nonce.toLowerCase(), live);
      },
      accept: (transaction) => {
        if (state === "reserved") {
          state = "ended";
          free();
        } else if (state === "signed" && live && !live.outstanding) {
          state = "ended";
          spend(transaction, "server");
        }
      },
      keep: () => {
        if (state === "reserved") {
          state = "ended";
          free();
        } else if (state === "signed" && live) {
          live.outstanding = true;
        }
      },
      release: () => {
        if (state !== "reserved") return;
        state = "ended";
        free();
      },
      hold: (funds) => {
        if (state === "ended") return;
        if (state === "signed" && live) this.live.delete(live.payment.nonce.toLowerCase());
        state = "ended";
        // The money stays in `reserved` and the URL keeps its slot: only its owner changes.
        funds.held += amount;
        funds.cover += amount;
        funds.days.set(day, (funds.days.get(day) ?? 0n) + amount);
      },
    };
  }

  /** A channel's books, starting at `basis`: the cumulative charge earlier books (or none) accounted for. */
  openChannel(basis: bigint): ChannelFunds {
    return { held: 0n, cover: basis, days: new Map() };
  }

  /** A request's charge against a channel: from its held money to `spent`, as one payment record. */
  chargeChannel(
    funds: ChannelFunds,
    payment: SignedPayment,
    transaction: Hex | undefined,
    confirmedBy: PaymentRecord["confirmedBy"],
  ): void {
    const { amount } = payment;
    const fromHeld = smaller(amount, funds.held);
    funds.held -= fromHeld;
    this.reserved -= fromHeld;
    // A charge beyond the held money (the chain showing more claimed than the books allowed for) raises
    // the cover too: that level is now spent, and new to today's budget.
    const beyond = amount - fromHeld;
    if (beyond > 0n) {
      funds.cover += beyond;
      const day = Math.floor(Date.now() / DAY_MS);
      this.days.set(day, (this.days.get(day) ?? 0n) + beyond);
    }
    this.spent += amount;
    this.book.add(payment, transaction, confirmedBy, Date.now());
  }

  /** Money back from a channel (a refund or a withdrawal), up to what it holds; returns what was freed. */
  releaseChannel(funds: ChannelFunds, amount: bigint): bigint {
    let freed = smaller(amount, funds.held);
    const total = freed;
    funds.held -= freed;
    funds.cover -= freed;
    this.reserved -= freed;
    // Newest days first: the money most recently put at risk is what comes back.
    for (const day of [...funds.days.keys()].sort((a, b) => b - a)) {
      if (freed === 0n) break;
      const share = funds.days.get(day) ?? 0n;
      const back = smaller(share, freed);
      funds.days.set(day, share - back);
      this.days.set(day, (this.days.get(day) ?? 0n) - back);
      freed -= back;
    }
    return total;
  }

  /** What {@link spent} is made of, oldest first: built afresh on every call. */
  get payments(): PaymentRecord[] {
    return this.book.list();
  }

  /** Outstanding authorizations, oldest first. */
  outstanding(): OutstandingEntry[] {
    const entries: OutstandingEntry[] = [];
    for (const live of this.live.values()) {
      if (!live.outstanding) continue;
      entries.push({
        authorization: { ...live.payment, signedAt: live.signedAt },
        domain: live.domain,
        cancelTransaction: live.cancelTransaction,
      });
    }
    return entries;
  }

  /**
   * What the chain proved about an outstanding authorization: `used` moves it to spent; `dead` (expired
   * unused, or cancelled) frees its budgets and slot. False when it was no longer outstanding.
   */
  settle(nonce: Hex, how: "used" | "dead"): boolean {
    const live = this.live.get(nonce.toLowerCase());
    if (!live?.outstanding) return false;
    live.settle(how);
    return true;
  }

  /** Remembers the transaction sent to cancel these nonces, in case its receipt is not seen. */
  cancelling(nonces: readonly Hex[], transaction: Hex): void {
    for (const nonce of nonces) {
      const live = this.live.get(nonce.toLowerCase());
      if (live) live.cancelTransaction = transaction;
    }
  }

  private checkBudgets(day: number, amount: bigint): void {
    const { budgetPerRun, budgetPerDay } = this.limits;
    const used = this.spent + this.reserved;
    if (budgetPerRun !== undefined && used + amount > budgetPerRun) {
      throw new PolicyError(
        "budget_run",
        `${amount} would exceed the run budget (${used} of ${budgetPerRun} used)`,
      );
    }
    const usedToday = this.days.get(day) ?? 0n;
    if (budgetPerDay !== undefined && usedToday + amount > budgetPerDay) {
      throw new PolicyError(
        "budget_day",
        `${amount} would exceed the daily budget (${usedToday} of ${budgetPerDay} used today)`,
      );
    }
  }
}
