import type { PaymentRequirements } from "@x402/core/types";
import type { Address, Hex } from "viem";
import { type Eip3009Domain, eip712DomainSeparator, transferAuthorizationDigest } from "./eip712.ts";
import { X402Error } from "./errors.ts";
import { toHex, writeHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { randomNonce } from "./nonce.ts";
import { backend, CURVE_ORDER, HALF_CURVE_ORDER } from "./secp256k1.ts";
import type { ExactEvmAuthorization } from "./types.ts";

/** Which secp256k1 implementation is active, for the facilitator to log at start. */
export const signatureBackend: "native" | "js" = backend.name;

export type InvalidSignatureReason =
  | "length"
  | "encoding"
  | "v"
  | "r_out_of_range"
  | "s_out_of_range"
  | "high_s"
  | "unrecoverable";

/** A signature that cannot be an EOA's: `invalid_exact_evm_signature`, as the reference facilitator reports it. */
export class InvalidSignatureError extends X402Error<{ reason: InvalidSignatureReason }> {
  override name = "InvalidSignatureError";
  declare readonly details: { reason: InvalidSignatureReason };

  constructor(reason: InvalidSignatureReason, message: string, cause?: unknown) {
    super("invalid_exact_evm_signature", message, { details: { reason }, cause });
  }
}

// Reused scratch space; every function below finishes with it before returning.
const sigBuf = new Uint8Array(65);
const digestBuf = new Uint8Array(32);
const keyBuf = new Uint8Array(32);

function compare32(a: Uint8Array, offset: number, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[offset + i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

function isZero32(a: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 32; i++) if (a[offset + i] !== 0) return false;
  return true;
}

/**
 * Copies a 65-byte r‖s‖v signature into `sigBuf` and returns its recovery bit, rejecting what USDC's
 * `ECRecover` and OpenZeppelin's `ECDSA` would reject on chain: v outside {27, 28} (0 and 1 are also taken,
 * as viem does), r or s outside [1, n), and s above n/2 (the malleable twin of a valid signature).
 */
function readSignature(signature: Hex | Uint8Array): number {
  if (typeof signature === "string") {
    if (signature.length !== 132) {
      throw new InvalidSignatureError(
        "length",
        `ECDSA signature must be 65 bytes, got ${signature.length} chars`,
      );
    }
    if (!writeHex(sigBuf, 0, signature, 65)) {
      throw new InvalidSignatureError("encoding", "signature is not 0x-prefixed hex");
    }
  } else {
    if (signature.length !== 65) {
      throw new InvalidSignatureError("length", `ECDSA signature must be 65 bytes, got ${signature.length}`);
    }
    sigBuf.set(signature);
  }
  const v = sigBuf[64] as number;
  const recovery = v === 27 || v === 0 ? 0 : v === 28 || v === 1 ? 1 : -1;
  if (recovery < 0) throw new InvalidSignatureError("v", `signature v must be 27 or 28, got ${v}`);
  if (isZero32(sigBuf, 0) || compare32(sigBuf, 0, CURVE_ORDER) >= 0) {
    throw new InvalidSignatureError("r_out_of_range", "signature r is not in [1, n)");
  }
  if (isZero32(sigBuf, 32) || compare32(sigBuf, 32, CURVE_ORDER) >= 0) {
    throw new InvalidSignatureError("s_out_of_range", "signature s is not in [1, n)");
  }
  if (compare32(sigBuf, 32, HALF_CURVE_ORDER) > 0) {
    throw new InvalidSignatureError(
      "high_s",
      "signature s is above n/2 (malleable); USDC and OpenZeppelin reject it",
    );
  }
  return recovery;
}

function readDigest(digest: Uint8Array | Hex): Uint8Array {
  if (typeof digest !== "string") {
    if (digest.length !== 32) throw new TypeError("digest must be 32 bytes");
    return digest;
  }
  if (!writeHex(digestBuf, 0, digest, 32)) throw new TypeError("digest must be 32 bytes of 0x-prefixed hex");
  return digestBuf;
}

function readPrivateKey(privateKey: Hex | Uint8Array): Uint8Array {
  if (typeof privateKey === "string") {
    if (!writeHex(keyBuf, 0, privateKey, 32)) throw new TypeError("private key must be 32 bytes of hex");
  } else {
    if (privateKey.length !== 32) throw new TypeError("private key must be 32 bytes");
    keyBuf.set(privateKey);
  }
  if (isZero32(keyBuf, 0) || compare32(keyBuf, 0, CURVE_ORDER) >= 0) {
    keyBuf.fill(0);
    throw new RangeError("private key is not in [1, n)");
  }
  return keyBuf;
}

function addressOf(publicKey: Uint8Array): Address {
  return toHex(keccak256(publicKey.subarray(1, 65)), 12, 32) as Address;
}

/**
 * Address that signed `digest`, **lowercase** (EIP-55 would cost one more keccak per call on the verify
 * path; compare with `from.toLowerCase()`). Throws {@link InvalidSignatureError} for anything but a
 * well-formed, low-s, 65-byte ECDSA signature.
 */
export function recoverAddress(digest: Uint8Array | Hex, signature: Hex | Uint8Array): Address {
  const hash = readDigest(digest);
  const recovery = readSignature(signature);
  let publicKey: Uint8Array;
  try {
    publicKey = backend.recover(sigBuf.subarray(0, 64), recovery, hash);
  } catch (cause) {
    throw new InvalidSignatureError("unrecoverable", "no public key recovers from this signature", cause);
  }
  return addressOf(publicKey);
}

/** 65-byte r‖s‖v signature (v = 27 or 28, low s, RFC 6979): byte-equal to viem's `sign` of the same digest. */
export function signDigest(privateKey: Hex | Uint8Array, digest: Uint8Array | Hex): Hex {
  const hash = readDigest(digest);
  const key = readPrivateKey(privateKey);
  try {
    const { signature, recovery } = backend.sign(hash, key);
    return `${toHex(signature)}${recovery === 0 ? "1b" : "1c"}` as Hex;
  } finally {
    key.fill(0);
  }
}

/**
 * The authorization the official client signs for `requirements`: valid from 0 until now plus the
 * requirements' `maxTimeoutSeconds`, with a fresh nonce. The official client checksums the payee; pass
 * `to` checksummed to match it byte for byte (the digest is the same either way).
 */
export function authorizationFor(
  from: Address,
  requirements: PaymentRequirements,
  to = requirements.payTo as Address,
): ExactEvmAuthorization {
  return {
    from,
    to,
    value: requirements.amount,
    validAfter: "0",
    validBefore: String(Math.floor(Date.now() / 1000) + requirements.maxTimeoutSeconds),
    nonce: randomNonce(),
  };
}

/** EIP-3009 signature over `authorization`, equal to viem's `signTypedData` with the same domain and message. */
export function signTransferAuthorization(
  privateKey: Hex | Uint8Array,
  domain: Eip3009Domain,
  authorization: ExactEvmAuthorization,
): Hex {
  return signDigest(privateKey, transferAuthorizationDigest(eip712DomainSeparator(domain), authorization));
}

/** Lowercase address of a private key. */
export function addressFromPrivateKey(privateKey: Hex | Uint8Array): Address {
  const key = readPrivateKey(privateKey);
  try {
    return addressOf(backend.publicKey(key));
  } finally {
    key.fill(0);
  }
}

/**
 * The (v, r, s) arguments of `transferWithAuthorization(…, uint8 v, bytes32 r, bytes32 s)`, validated like
 * {@link recoverAddress}. v comes out as 27 or 28 even when the signature carried 0 or 1: the reference
 * facilitator passes those through unchanged and USDC then reverts on them.
 */
export function splitSignature(signature: Hex | Uint8Array): { v: 27 | 28; r: Hex; s: Hex } {
  const recovery = readSignature(signature);
  return { v: recovery === 0 ? 27 : 28, r: toHex(sigBuf, 0, 32), s: toHex(sigBuf, 32, 64) };
}
