import { getAddress } from "viem";
import { describe, expect, it } from "vitest";
import { type ExactEvmPayload, isUint256String, parseExactEvmPayload } from "../../src/protocol/index.ts";
import { randomAuthorization, randomHex, UINT256_MAX } from "./helpers.ts";

function valid(): ExactEvmPayload {
  return { signature: randomHex(65), authorization: randomAuthorization() };
}

describe("parseExactEvmPayload", () => {
  it("returns a valid payload as is, with lowercase or checksummed addresses and long smart-wallet signatures", () => {
    const payload = valid();
    expect(parseExactEvmPayload(payload)).toBe(payload);
    const lower = {
      ...payload.authorization,
      from: payload.authorization.from.toLowerCase() as `0x${string}`,
    };
    expect(() => parseExactEvmPayload({ ...payload, authorization: lower })).not.toThrow();
    expect(() => parseExactEvmPayload({ ...payload, signature: randomHex(300) })).not.toThrow();
  });

  it.each([
    ["", null],
    ["", []],
    ["signature", { signature: "0x" }],
    ["signature", { signature: "0xabc" }],
    ["signature", { signature: 42 }],
    ["authorization", { authorization: "0x" }],
    ["authorization.from", { from: "0x1234" }],
    ["authorization.to", { to: undefined }],
    ["authorization.value", { value: 10000 }],
    ["authorization.value", { value: (UINT256_MAX + 1n).toString() }],
    ["authorization.value", { value: "-1" }],
    ["authorization.validAfter", { validAfter: "1.5" }],
    ["authorization.validBefore", { validBefore: "" }],
    ["authorization.nonce", { nonce: randomHex(16) }],
  ])("rejects a bad %s with invalid_payload naming the field", (field, patch) => {
    const payload = valid();
    const bad =
      patch === null || Array.isArray(patch)
        ? patch
        : "signature" in patch || "authorization" in patch
          ? { ...payload, ...patch }
          : { ...payload, authorization: { ...payload.authorization, ...patch } };
    expect(() => parseExactEvmPayload(bad)).toThrow(
      expect.objectContaining({ code: "invalid_payload", details: { field } }),
    );
    expect(() => parseExactEvmPayload(bad)).toThrow(`payload.${field}`);
  });

  it("rejects a mixed-case address whose EIP-55 checksum is wrong, as viem's hashTypedData would", () => {
    const payload = valid();
    const checksummed = getAddress(payload.authorization.to);
    const flipped = checksummed.replace(/[a-f]/, (c) => c.toUpperCase()) as `0x${string}`;
    expect(flipped).not.toBe(checksummed);
    expect(() =>
      parseExactEvmPayload({ ...payload, authorization: { ...payload.authorization, to: flipped } }),
    ).toThrow("payload.authorization.to");
  });
});

describe("isUint256String", () => {
  it("takes [0, 2^256) in decimal and nothing else", () => {
    expect(isUint256String("0")).toBe(true);
    expect(isUint256String(UINT256_MAX.toString())).toBe(true);
    expect(isUint256String(`000${UINT256_MAX}`)).toBe(true);
    expect(isUint256String((UINT256_MAX + 1n).toString())).toBe(false);
    expect(isUint256String("0x10")).toBe(false);
    expect(isUint256String(10)).toBe(false);
  });
});
