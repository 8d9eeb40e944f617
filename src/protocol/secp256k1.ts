import { createRequire } from "node:module";
import { secp256k1 } from "@noble/curves/secp256k1";
import type * as NativeSecp256k1 from "secp256k1";

/** The three curve operations the module needs, so the native addon and @noble/curves are interchangeable. */
export type Secp256k1Backend = {
  readonly name: "native" | "js";
  /** RFC 6979 deterministic, low-s: the same bytes viem's `sign` produces. */
  sign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recovery: number };
  /** Uncompressed (65-byte) public key; throws when no point recovers from the signature. */
  recover(signature: Uint8Array, recovery: number, digest: Uint8Array): Uint8Array;
  /** Uncompressed (65-byte) public key. */
  publicKey(privateKey: Uint8Array): Uint8Array;
};

export const jsBackend: Secp256k1Backend = {
  name: "js",
  sign(digest, privateKey) {
    const sig = secp256k1.sign(digest, privateKey, { lowS: true });
    return { signature: sig.toCompactRawBytes(), recovery: sig.recovery };
  },
  recover(signature, recovery, digest) {
    return secp256k1.Signature.fromCompact(signature)
      .addRecoveryBit(recovery)
      .recoverPublicKey(digest)
      .toRawBytes(false);
  },
  publicKey(privateKey) {
    return secp256k1.getPublicKey(privateKey, false);
  },
};

function loadNative(): Secp256k1Backend | undefined {
  let lib: typeof NativeSecp256k1;
  try {
    // Not "secp256k1" itself: that entry silently falls back to `elliptic` (slower than noble) when the
    // addon does not load, and we could not tell which one we got.
    lib = createRequire(import.meta.url)("secp256k1/bindings") as typeof NativeSecp256k1;
  } catch {
    return undefined;
  }
  // Reused: recovery is synchronous and callers hash the key before the next call.
  const recovered = new Uint8Array(65);
  const native: Secp256k1Backend = {
    name: "native",
    sign(digest, privateKey) {
      const { signature, recid } = lib.ecdsaSign(digest, privateKey);
      return { signature, recovery: recid };
    },
    recover(signature, recovery, digest) {
      return lib.ecdsaRecover(signature, recovery, digest, false, recovered);
    },
    publicKey(privateKey) {
      return lib.publicKeyCreate(privateKey, false);
    },
  };
  return agreesWithJs(native) ? native : undefined;
}

/** One sign / recover round against @noble/curves, so a broken prebuilt binary is never trusted. */
function agreesWithJs(native: Secp256k1Backend): boolean {
  try {
    const key = new Uint8Array(32).fill(0x42);
    const digest = new Uint8Array(32).fill(0x07);
    const a = native.sign(digest, key);
    const b = jsBackend.sign(digest, key);
    const publicKey = jsBackend.publicKey(key);
    return (
      a.recovery === b.recovery &&
      Buffer.from(a.signature).equals(b.signature) &&
      Buffer.from(native.recover(a.signature, a.recovery, digest)).equals(publicKey) &&
      Buffer.from(native.publicKey(key)).equals(publicKey)
    );
  } catch {
    return false;
  }
}

export const nativeBackend: Secp256k1Backend | undefined = loadNative();

/** Chosen once at import: the native addon when it loads and agrees with noble, else noble. */
export const backend: Secp256k1Backend = nativeBackend ?? jsBackend;

/** Curve order n, big-endian. */
export const CURVE_ORDER = bigintTo32Bytes(secp256k1.CURVE.n);
/** floor(n / 2): the largest `s` OpenZeppelin's ECDSA and USDC's ECRecover accept. */
export const HALF_CURVE_ORDER = bigintTo32Bytes(secp256k1.CURVE.n >> 1n);

function bigintTo32Bytes(value: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(value.toString(16).padStart(64, "0"), "hex"));
}
