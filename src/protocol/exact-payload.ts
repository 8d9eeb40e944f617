import { isAddress, maxUint256 } from "viem";
import { X402Error } from "./errors.ts";
import type { ExactEvmPayload } from "./types.ts";

const DECIMAL = /^\d+$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})+$/;

/** True when `value` is a decimal string for an integer in [0, 2^256). */
export function isUint256String(value: unknown): value is string {
  if (typeof value !== "string" || !DECIMAL.test(value)) return false;
  // Below 78 digits the value cannot reach 2^256, so the BigInt is only built for the rare long string.
  return value.length < 78 || BigInt(value) <= maxUint256;
}

function invalid(field: string, expected: string): X402Error {
  return new X402Error("invalid_payload", `payload.${field} must be ${expected}`, { details: { field } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks `PaymentPayload.payload` against the EIP-3009 shape and returns it typed, or throws an
 * {@link X402Error} `invalid_payload` naming the first bad field. The reference facilitator does no such
 * check (a malformed payload makes it throw, a 500), so this is where a 400 with a reason comes from.
 *
 * Mixed-case addresses must carry a valid EIP-55 checksum, as viem's `hashTypedData` in the reference
 * facilitator demands; all-lowercase ones are accepted. Extra fields are kept.
 */
export function parseExactEvmPayload(payload: unknown): ExactEvmPayload {
  if (!isRecord(payload)) throw invalid("", "an object");
  const { signature, authorization } = payload;
  if (typeof signature !== "string" || !HEX_BYTES.test(signature)) {
    throw invalid("signature", "0x-prefixed hex bytes");
  }
  if (!isRecord(authorization)) throw invalid("authorization", "an object");
  for (const field of ["from", "to"] as const) {
    const value = authorization[field];
    if (typeof value !== "string" || !isAddress(value)) {
      throw invalid(`authorization.${field}`, "an address (EIP-55 checksummed or lowercase)");
    }
  }
  for (const field of ["value", "validAfter", "validBefore"] as const) {
    if (!isUint256String(authorization[field])) {
      throw invalid(`authorization.${field}`, "a uint256 decimal string");
    }
  }
  if (typeof authorization.nonce !== "string" || !BYTES32.test(authorization.nonce)) {
    throw invalid("authorization.nonce", "32 bytes of 0x-prefixed hex");
  }
  return payload as ExactEvmPayload;
}
