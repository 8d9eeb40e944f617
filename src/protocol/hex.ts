import type { Hex } from "viem";

// Lookup tables instead of parseInt/toString(16): these run several times per verified payment.
const BYTE_TO_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[65 + i] = 10 + i;
  NIBBLE[97 + i] = 10 + i;
}

/** Past this many bytes Buffer's native encoder beats the table (a settlement transaction is kilobytes). */
const NATIVE_FROM = 64;

/** `0x`-prefixed lowercase hex of `bytes[start, end)`. */
export function toHex(bytes: Uint8Array, start = 0, end = bytes.length): Hex {
  if (end - start > NATIVE_FROM) {
    return `0x${Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("hex")}`;
  }
  let out = "0x";
  for (let i = start; i < end; i++) out += BYTE_TO_HEX[bytes[i] as number];
  return out as Hex;
}

/**
 * Decodes exactly `length` bytes of `0x`-prefixed hex into `target` at `offset`.
 * Returns false (leaving `target` partly written) when `hex` is not `0x` followed by `2 * length` hex digits.
 */
export function writeHex(target: Uint8Array, offset: number, hex: string, length: number): boolean {
  if (hex.length !== 2 + 2 * length || hex.charCodeAt(0) !== 48 || hex.charCodeAt(1) !== 120) {
    return false;
  }
  for (let i = 0; i < length; i++) {
    const hi = NIBBLE[hex.charCodeAt(2 + 2 * i)] ?? -1;
    const lo = NIBBLE[hex.charCodeAt(3 + 2 * i)] ?? -1;
    if (hi < 0 || lo < 0) return false;
    target[offset + i] = (hi << 4) | lo;
  }
  return true;
}
