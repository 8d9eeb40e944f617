import { randomFillSync } from "node:crypto";
import type { Hex } from "viem";
import { toHex } from "./hex.ts";

// One CSPRNG call per 256 nonces: per-call getRandomValues / randomBytes cost ~2.5 µs each on the dev box,
// most of it call overhead. Nonces are public once signed, so holding future ones in memory leaks nothing.
const POOL_BYTES = 32 * 256;
const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES;

/** A fresh random 32-byte EIP-3009 authorization nonce. */
export function randomNonce(): Hex {
  if (offset === POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const nonce = toHex(pool, offset, offset + 32);
  offset += 32;
  return nonce;
}
