import type { Hex } from "viem";
import type { Eip3009Domain } from "../protocol/index.ts";
import { PaymentBook, type PaymentRecord, type SignedPayment } from "./payment-book.ts";
import type { SpendingPolicy } from "./policy.ts";
import { PolicyError } from "./refusal.ts";

export type { PaymentRecord, SignedPayment } from "./payment-book.ts";

const DAY_MS = 86_400_000;

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
    };
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
