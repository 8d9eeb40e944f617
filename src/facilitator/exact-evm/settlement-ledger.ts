import type { Hash, Hex } from "viem";
import type { SettlementOutcome } from "./settlement-batcher.ts";

type Entry = {
  /** The attempt while it runs (or is pending on chain); undefined once it settled. */
  outcome: Promise<SettlementOutcome> | undefined;
  /** The settling transaction once `outcome` settled successfully: all a repeat needs to be answered. */
  transaction: Hash | undefined;
  /** Unix seconds after which the token rejects the authorization anyway, so the entry can go. */
  validBefore: number;
};

/**
 * At most one settlement per authorization. The key is the EIP-712 digest, which commits to the token,
 * chain, payer, payee, amount, window and nonce: the same authorization presented again, one after the
 * other or concurrently, joins the first attempt and gets its outcome and transaction hash (x402 issue #786).
 * Failures are forgotten so a retry can try again; a `settlement_pending` attempt is kept, because its
 * transaction may still land and a second broadcast must never race it.
 *
 * A success is kept until the authorization expires, not just until its transaction is final: a resource
 * server that lost our answer settles again (with the same header, any time before `validBefore`) and must
 * hear that its own settle went through, where a fresh attempt would fail on the used nonce and leave its
 * payer charged without service. So an entry is held for the whole window, one per settled authorization,
 * and is kept small (a long run at hundreds a second holds a few hundred thousand): the digest as a number
 * and, once settled, the transaction hash alone rather than the promise and outcome around it.
 */
export class SettlementLedger {
  private readonly entries = new Map<bigint, Entry>();

  /** The first attempt for this digest, if one is on record. */
  get(digest: Hex): Promise<SettlementOutcome> | undefined {
    const entry = this.entries.get(BigInt(digest));
    if (!entry) return undefined;
    return entry.outcome ?? Promise.resolve({ ok: true, transaction: entry.transaction as Hash });
  }

  /**
   * Records `attempt` as the one settlement of `digest`, and forgets it again if it fails outright.
   * `validBefore` is the authorization's, in Unix seconds.
   */
  record(digest: Hex, validBefore: number, attempt: Promise<SettlementOutcome>): Promise<SettlementOutcome> {
    const key = BigInt(digest);
    const entry: Entry = { outcome: attempt, transaction: undefined, validBefore };
    this.entries.set(key, entry);
    void attempt.then((outcome) => {
      // A later attempt (a pending one resolved again) owns the entry now.
      if (this.entries.get(key) !== entry) return;
      if (outcome.ok) {
        entry.transaction = outcome.transaction;
        entry.outcome = undefined;
      } else if (outcome.reason !== "settlement_pending") {
        this.entries.delete(key);
      }
    });
    return attempt;
  }

  /** Replaces a pending attempt with the outcome of checking on (or re-sending) its transaction. */
  resolvePending(digest: Hex, outcome: Promise<SettlementOutcome>): Promise<SettlementOutcome> {
    const entry = this.entries.get(BigInt(digest));
    return this.record(digest, entry?.validBefore ?? 0, outcome);
  }

  /** Drops entries whose authorization has expired: the token would refuse them now. */
  sweep(nowSeconds: number): void {
    for (const [digest, entry] of this.entries) {
      if (entry.validBefore < nowSeconds) this.entries.delete(digest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
