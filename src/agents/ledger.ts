import { PolicyError, type SpendingPolicy } from "./policy.ts";

const DAY_MS = 86_400_000;

/** A payment's claim on the budgets, taken before signing and ended exactly once. */
export type Reservation = {
  /** The server took the payment. */
  commit(): void;
  /** The server refused it: the money and the URL's payment slot are free again. */
  release(): void;
  /**
   * The outcome is unknown (the connection dropped, a 5xx): the signed authorization may still settle
   * until it expires, so the budget keeps counting it, but `spent` does not.
   */
  hold(): void;
};

export type LedgerLimits = Pick<SpendingPolicy, "budgetPerRun" | "budgetPerDay" | "maxPaymentsPerUrl">;

/**
 * One agent's budgets. Reservation is synchronous, so concurrent requests of one agent (one event loop)
 * can never together reserve more than a budget allows.
 */
export class SpendLedger {
  /** Committed payments. */
  spent = 0n;
  /** In flight or held. */
  reserved = 0n;
  private readonly days = new Map<number, bigint>();
  private readonly perUrl = new Map<string, number>();

  constructor(private readonly limits: LedgerLimits) {}

  reserve(url: string, amount: bigint): Reservation {
    const { budgetPerRun, budgetPerDay, maxPaymentsPerUrl } = this.limits;
    const payments = this.perUrl.get(url) ?? 0;
    if (maxPaymentsPerUrl !== undefined && payments >= maxPaymentsPerUrl) {
      throw new PolicyError("max_payments_per_url", `already ${payments} payments for ${url}`);
    }
    const used = this.spent + this.reserved;
    if (budgetPerRun !== undefined && used + amount > budgetPerRun) {
      throw new PolicyError(
        "budget_run",
        `${amount} would exceed the run budget (${used} of ${budgetPerRun} used)`,
      );
    }
    // Days are UTC: the same boundary for every agent, whatever the host's time zone.
    const day = Math.floor(Date.now() / DAY_MS);
    const usedToday = this.days.get(day) ?? 0n;
    if (budgetPerDay !== undefined && usedToday + amount > budgetPerDay) {
      throw new PolicyError(
        "budget_day",
        `${amount} would exceed the daily budget (${usedToday} of ${budgetPerDay} used today)`,
      );
    }
    this.days.set(day, usedToday + amount);
    this.perUrl.set(url, payments + 1);
    this.reserved += amount;

    let open = true;
    const end = (): boolean => {
      if (!open) return false;
      open = false;
      return true;
    };
    return {
      commit: () => {
        if (!end()) return;
        this.reserved -= amount;
        this.spent += amount;
      },
      release: () => {
        if (!end()) return;
        this.reserved -= amount;
        this.days.set(day, (this.days.get(day) ?? 0n) - amount);
        const count = (this.perUrl.get(url) ?? 1) - 1;
        if (count === 0) this.perUrl.delete(url);
        else this.perUrl.set(url, count);
      },
      hold: () => {
        end();
      },
    };
  }
}
