type Entry = {
  /** `in-flight`: a request holds it. `uncertain`: this server sent a settle for it and never learned the outcome. */
  state: "in-flight" | "uncertain";
  /** Unix seconds after which the token refuses the authorization, so forgetting it is safe. */
  validBefore: number;
};

/**
 * An authorization that paid for a response, or was refused because it paid elsewhere, is only its
 * `validBefore`: nothing more is asked of it, and most entries are these.
 */
type Spent = number;

/** A request's hold on one authorization, to be ended exactly one way once the request is decided. */
export type Claim = {
  /**
   * This server has already sent a settle for the authorization, which may have gone through: the chain
   * may show its nonce as used by that very settle, and a `duplicate` answer may be our own.
   */
  readonly resubmission: boolean;
  /** Nothing was charged: the authorization may be presented again. */
  release(): void;
  /** It was charged (or refused as charged elsewhere): any later presentation is a replay. */
  spend(): void;
  /** A settle may or may not have gone through: the next presentation settles again to find out. */
  leaveUncertain(): void;
};

/**
 * One request at a time per authorization, and none after it was paid for. The facilitator alone cannot
 * promise this: two requests carrying the same payment both verify as valid until one settles, and the
 * facilitator's idempotent settle then answers both with success. So a payment is claimed here before it
 * is verified, keyed by what makes an EIP-3009 authorization unique (token, payer, nonce).
 *
 * A spent authorization is remembered until it expires, not only until its settlement is final, so that a
 * replay is refused here whatever the facilitator answers: one that settles idempotently may answer it with
 * success, and a reorg can make the nonce look unused to verify for a while. That is one entry per payment
 * for the authorization's whole window, so entries are small: grouped by token and payer, the nonce as a
 * number, and a spent one as its `validBefore` alone.
 */
export class PaymentClaims {
  /** By `network:asset:payer`, then by nonce. */
  private readonly entries = new Map<string, Map<bigint, Entry | Spent>>();

  /**
   * A hold on the authorization, or undefined when another request holds it or it is spent. `payer` names
   * the token and the payer (`network:asset:from`, lowercase); `nonce` is the authorization's.
   */
  claim(payer: string, nonce: bigint, validBefore: number): Claim | undefined {
    let nonces = this.entries.get(payer);
    if (!nonces) {
      nonces = new Map();
      this.entries.set(payer, nonces);
    }
    const earlier = nonces.get(nonce);
    if (earlier !== undefined && (typeof earlier === "number" || earlier.state !== "uncertain")) {
      return undefined;
    }
    const entry: Entry = { state: "in-flight", validBefore };
    nonces.set(nonce, entry);
    const end = (state: "uncertain" | "spent" | undefined) => {
      // A claim ends once; ending it again (or after a sweep replaced it) must not touch a newer holder.
      const held = this.entries.get(payer);
      if (held?.get(nonce) !== entry || entry.state !== "in-flight") return;
      if (state === "uncertain") entry.state = state;
      else if (state === "spent") held.set(nonce, validBefore);
      else {
        held.delete(nonce);
        if (held.size === 0) this.entries.delete(payer);
      }
    };
    return {
      resubmission: earlier !== undefined,
      release: () => end(undefined),
      spend: () => end("spent"),
      leaveUncertain: () => end("uncertain"),
    };
  }

  /** Forgets authorizations the token would refuse by now anyway. */
  sweep(nowSeconds: number): void {
    for (const [payer, nonces] of this.entries) {
      for (const [nonce, entry] of nonces) {
        const validBefore = typeof entry === "number" ? entry : entry.validBefore;
        if (validBefore < nowSeconds) nonces.delete(nonce);
      }
      if (nonces.size === 0) this.entries.delete(payer);
    }
  }

  /** Authorizations held: in flight, uncertain or spent, and not yet expired. */
  get size(): number {
    let size = 0;
    for (const nonces of this.entries.values()) size += nonces.size;
    return size;
  }
}
