import type { Address, Hash, Hex } from "viem";
import { keccak256, signDigest, toHex } from "../../protocol/index.ts";

/** The EIP-1559 transactions the relayers send: a call with no value and no access list. */
export type Eip1559Call = {
  chainId: number;
  nonce: number;
  maxPriorityFeePerGas: bigint;
  maxFeePerGas: bigint;
  gas: bigint;
  to: Address;
  data: Hex;
};

/**
 * Signs `tx` and returns the raw transaction and its hash: byte-equal to viem's `signTransaction` (a test
 * holds it so), at a fraction of the cost. A settlement batch carries tens of kilobytes of calldata,
 * which viem serialises twice and hashes with a pure-JS keccak about 5x slower than js-sha3 (some 15 ms
 * per hundred settlements); here the RLP is assembled once as bytes, hashed with js-sha3 and signed
 * with native secp256k1.
 */
export function signEip1559Call(privateKey: Hex, tx: Eip1559Call): { serialized: Hex; hash: Hash } {
  const fields = [
    rlpUint(BigInt(tx.chainId)),
    rlpUint(BigInt(tx.nonce)),
    rlpUint(tx.maxPriorityFeePerGas),
    rlpUint(tx.maxFeePerGas),
    rlpUint(tx.gas),
    rlpBytes(hexBytes(tx.to)),
    rlpUint(0n),
    rlpBytes(hexBytes(tx.data)),
    EMPTY_LIST,
  ];
  const signature = signDigest(privateKey, keccak256(typed(rlpList(fields))));
  const v = signature.slice(130) === "1b" ? 0n : 1n;
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const signed = typed(rlpList([...fields, rlpUint(v), rlpUint(r), rlpUint(s)]));
  return { serialized: toHex(signed), hash: toHex(keccak256(signed)) as Hash };
}

const EMPTY_LIST = Uint8Array.of(0xc0);

function hexBytes(hex: Hex): Uint8Array {
  const digits = hex.slice(2);
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) throw new TypeError(`not hex bytes: ${hex}`);
  return Buffer.from(digits, "hex");
}

/** EIP-2718 envelope: type 2, then the RLP payload. */
function typed(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = 0x02;
  out.set(payload, 1);
  return out;
}

function rlpUint(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError("RLP integers are unsigned");
  if (value === 0n) return Uint8Array.of(0x80);
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return rlpBytes(Buffer.from(hex, "hex"));
}

function rlpBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 1 && (bytes[0] as number) < 0x80) return bytes;
  return withLength(0x80, bytes);
}

function rlpList(items: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const item of items) length += item.length;
  const payload = new Uint8Array(length);
  let offset = 0;
  for (const item of items) {
    payload.set(item, offset);
    offset += item.length;
  }
  return withLength(0xc0, payload);
}

/** `offset + length` for up to 55 bytes, else `offset + 55 + len(length)` and the big-endian length. */
function withLength(offset: number, payload: Uint8Array): Uint8Array {
  if (payload.length <= 55) {
    const out = new Uint8Array(payload.length + 1);
    out[0] = offset + payload.length;
    out.set(payload, 1);
    return out;
  }
  const lengthBytes: number[] = [];
  for (let n = payload.length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n % 256);
  const out = new Uint8Array(1 + lengthBytes.length + payload.length);
  out[0] = offset + 55 + lengthBytes.length;
  out.set(lengthBytes, 1);
  out.set(payload, 1 + lengthBytes.length);
  return out;
}
