import { describe, expect, it } from "vitest";
import { PaymentClaims } from "../../src/server/claims.ts";

const PAYER =
  "eip155:8453:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913:0x00000000000000000000000000000000000a0001";
const OTHER_PAYER =
  "eip155:8453:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913:0x00000000000000000000000000000000000a0002";
const VALID_BEFORE = 1_900_000_000;

describe("the paywall's claims", () => {
  it("hold one entry per spent authorization however often it is replayed, until it expires", () => {
    const claims = new PaymentClaims();
    const nonces = Array.from({ length: 50 }, (_, i) => BigInt(i + 1));
    for (const nonce of nonces) claims.claim(PAYER, nonce, VALID_BEFORE)?.spend();
    for (const nonce of nonces) {
      for (let replay = 0; replay < 3; replay++)
        expect(claims.claim(PAYER, nonce, VALID_BEFORE)).toBeUndefined();
    }
    expect(claims.size).toBe(nonces.length);

    // Still refused at the last second the token would take it; forgotten, payer and all, after.
    claims.sweep(VALID_BEFORE);
    expect(claims.claim(PAYER, 1n, VALID_BEFORE)).toBeUndefined();
    expect(claims.size).toBe(nonces.length);
    claims.sweep(VALID_BEFORE + 1);
    expect(claims.size).toBe(0);
  });

  it("keep nothing of a released claim, and an uncertain one until it is decided", () => {
    const claims = new PaymentClaims();
    claims.claim(PAYER, 1n, VALID_BEFORE)?.release();
    expect(claims.size).toBe(0);

    const uncertain = claims.claim(PAYER, 2n, VALID_BEFORE);
    uncertain?.leaveUncertain();
    expect(claims.size).toBe(1);
    // The next presentation settles again to find out: it may hold the claim, flagged as a resubmission.
    const again = claims.claim(PAYER, 2n, VALID_BEFORE);
    expect(again?.resubmission).toBe(true);
    expect(claims.claim(PAYER, 2n, VALID_BEFORE)).toBeUndefined();
    again?.spend();
    // Ending a claim twice, or one a newer claim replaced, changes nothing.
    uncertain?.release();
    again?.release();
    expect(claims.claim(PAYER, 2n, VALID_BEFORE)).toBeUndefined();
    expect(claims.size).toBe(1);
  });

  it("key an authorization by payer and nonce: the same nonce of another payer is another authorization", () => {
    const claims = new PaymentClaims();
    claims.claim(PAYER, 7n, VALID_BEFORE)?.spend();
    const other = claims.claim(OTHER_PAYER, 7n, VALID_BEFORE);
    expect(other).toBeDefined();
    expect(other?.resubmission).toBe(false);
    expect(claims.size).toBe(2);
  });
});
