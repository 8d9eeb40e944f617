type Entry = {
  /**
   * `in-flight`: a request holds it. `spent`: it paid for a response, or was refused because it paid
   * elsewhere. `uncertain`: this server sent a settle for it and never learned the outcome.
   */
  state: "in-flight" | "spent" | "uncertain";
  /** Unix seconds after which the token refuses the authorization, so forgetting it is safe. */
  validBefore: number;
};

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
 */
export class PaymentClaims {
  private readonly entries = new Map<string, Entry>();

  /** A hold on the authorization, or undefined when another request holds it or it is spent. */
  claim(key: string, validBefore: number): Claim | undefined {
    const earlier = this.entries.get(key);
    if (earlier && earlier.state !== "uncertain") return undefined;
    const entry: Entry = { state: "in-flight", validBefore };
    this.entries.set(key, entry);
    const end = (state: Entry["state"] | undefined) => {
      // A claim ends once; ending it again (or after a sweep replaced it) must not touch a newer holder.
      if (this.entries.get(key) !== entry || entry.state !== "in-flight") return;
      if (state === undefined) this.entries.delete(key);
      else entry.state = state;
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
    for (const [key, entry] of this.entries) {
      if (entry.validBefore < nowSeconds) this.entries.delete(key);
    }
  }
}
