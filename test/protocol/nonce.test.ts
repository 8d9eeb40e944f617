import { describe, expect, it } from "vitest";
import { randomNonce } from "../../src/protocol/index.ts";

describe("randomNonce", () => {
  it("gives distinct 32-byte hex nonces across pool refills", () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const nonce = randomNonce();
      expect(nonce).toMatch(/^0x[0-9a-f]{64}$/);
      nonces.add(nonce);
    }
    expect(nonces.size).toBe(2000);
  });
});
