import type { Hex } from "viem";
import type { SettleResponse } from "../../protocol/index.ts";
import type { SettlementOutcome } from "../exact-evm/settlement-batcher.ts";
import { SettlementLedger } from "../exact-evm/settlement-ledger.ts";

/**
 * At most one transaction per batch-settlement action, on the EIP-3009 module's {@link SettlementLedger}:
 * the same action presented again, concurrently or later, joins the first attempt and gets its answer. A
 * failure is forgotten (a retry may succeed), a `settlement_pending` attempt is kept and checked again,
 * never raced by a second broadcast, and a success is kept until `expiresAt` (a deposit's authorization
 * window: a lost answer is asked again with the same payload and must hear it went through).
 *
 * The ledger keeps outcomes small; the answers themselves (a deposit's channel snapshot) are kept beside it
 * for as long as the ledger keeps the action.
 */
export class SettleOnce {
  private readonly ledger = new SettlementLedger();
  private readonly answers = new Map<Hex, Promise<SettleResponse>>();

  /**
   * Runs `attempt` for `key` unless an attempt is on record, whose answer is then returned with
   * `duplicate: true`; a pending one is settled by `recheck` first.
   */
  async run(
    key: Hex,
    expiresAt: number,
    attempt: () => Promise<SettleResponse>,
    recheck: (pending: SettleResponse) => Promise<SettleResponse>,
  ): Promise<{ response: SettleResponse; duplicate: boolean }> {
    const earlier = this.ledger.get(key);
    const answer = this.answers.get(key);
    if (earlier && answer) {
      const outcome = await earlier;
      const first = await (this.answers.get(key) ?? answer);
      if (outcome.ok || outcome.reason !== "settlement_pending") return { response: first, duplicate: true };
      return {
        response: await this.follow(key, recheck(first), (p) => this.ledger.resolvePending(key, p)),
        duplicate: true,
      };
    }
    return {
      response: await this.follow(key, attempt(), (p) => this.ledger.record(key, expiresAt, p)),
      duplicate: false,
    };
  }

  /** Forgets actions whose window closed by `nowSeconds`. */
  sweep(nowSeconds: number): void {
    this.ledger.sweep(nowSeconds);
    for (const key of this.answers.keys()) if (!this.ledger.get(key)) this.answers.delete(key);
  }

  /**
   * Puts `answer` on record for `key` and waits for it. An attempt that throws (the node unreachable)
   * counts as a failure: forgotten, and the error goes to the caller.
   */
  private async follow(
    key: Hex,
    answer: Promise<SettleResponse>,
    record: (outcome: Promise<SettlementOutcome>) => Promise<SettlementOutcome>,
  ): Promise<SettleResponse> {
    this.answers.set(key, answer);
    await record(
      answer.then(
        outcomeOf,
        () => ({ ok: false, reason: "invalid_transaction_state", transaction: "" }) as const,
      ),
    );
    // The ledger has taken the outcome in by now (its handler was attached first): a forgotten failure's
    // answer goes too.
    if (!this.ledger.get(key) && this.answers.get(key) === answer) this.answers.delete(key);
    return answer;
  }
}

/** The ledger's view of an answer: success, pending (kept), or a failure (forgotten). */
function outcomeOf(response: SettleResponse): SettlementOutcome {
  if (response.success) return { ok: true, transaction: response.transaction as Hex };
  return {
    ok: false,
    reason:
      response.errorReason === "settlement_pending" ? "settlement_pending" : "invalid_transaction_state",
    transaction: (response.transaction || "") as Hex | "",
  };
}
