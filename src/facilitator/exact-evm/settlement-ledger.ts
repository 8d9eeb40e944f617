import type { Hex } from "viem";
import type { SettlementOutcome } from "./settlement-batcher.ts";

type Entry = {
  outcome: Promise<SettlementOutcome>;
  /** Unix seconds after which the token rejects the authorization anyway, so the entry can go. */
  validBefore: bigint;
};

/**
 * At most one settlement per authorization. The key is the EIP-712 digest, which commits to the token,
 * chain, payer, payee, amount, window and nonce: the same authorization presented again, one after the
 * other or concurrently, joins the first attempt and gets its outcome and transaction hash (x402 issue #786).
 * Failures are forgotten so a retry can try again; a `settlement_pending` attempt is kept, because its
 * transaction may still land and a second broadcast must never race it.
 */
export class SettlementLedger {
  private readonly entries = new Map<Hex, Entry>();

  /** The first attempt for this digest, if one is on record. */
  get(digest: Hex): Promise<SettlementOutcome> | undefined {
    return this.entries.get(digest)?.outcome;
  }

  /** Records `attempt` as the one settlement of `digest`, and forgets it again if it fails outright. */
  record(digest: Hex, validBefore: bigint, attempt: Promise<SettlementOutcome>): Promise<SettlementOutcome> {
    this.entries.set(digest, { outcome: attempt, validBefore });
    void attempt.then((outcome) => {
      if (
        !outcome.ok &&
        outcome.reason !== "settlement_pending" &&
        this.entries.get(digest)?.outcome === attempt
      ) {
        this.entries.delete(digest);
      }
    });
    return attempt;
  }

  /** Replaces a pending attempt with the outcome of checking on (or re-sending) its transaction. */
  resolvePending(digest: Hex, outcome: Promise<SettlementOutcome>): Promise<SettlementOutcome> {
    const entry = this.entries.get(digest);
    return this.record(digest, entry?.validBefore ?? 0n, outcome);
  }

  /** Drops entries whose authorization has expired: the token would refuse them now. */
  sweep(nowSeconds: bigint): void {
    for (const [digest, entry] of this.entries) {
      if (entry.validBefore < nowSeconds) this.entries.delete(digest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
