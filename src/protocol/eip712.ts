import type { PaymentRequirements } from "@x402/core/types";
import { maxUint256 } from "viem";
import { X402Error } from "./errors.ts";
import { writeHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { chainIdFromNetwork } from "./networks.ts";
import type { ExactEvmAuthorization } from "./types.ts";

/** EIP-712 types of the EIP-3009 message, in the shape viem's `signTypedData` and the official client take. */
export const transferWithAuthorizationTypes = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

export const transferWithAuthorizationPrimaryType = "TransferWithAuthorization";

/** The authorization as viem's typed-data functions (and the official client) take it: uint256s as bigints. */
export function typedDataMessage(authorization: ExactEvmAuthorization) {
  return {
    from: authorization.from,
    to: authorization.to,
    value: BigInt(authorization.value),
    validAfter: BigInt(authorization.validAfter),
    validBefore: BigInt(authorization.validBefore),
    nonce: authorization.nonce,
  };
}

/** The token's EIP-712 domain: what `DOMAIN_SEPARATOR()` of a USDC-style token commits to. */
export type Eip3009Domain = {
  name: string;
  version: string;
  chainId: number | bigint;
  verifyingContract: string;
};

const utf8 = new TextEncoder();

// Derived from the types above rather than spelled out twice, so the hash cannot drift from what viem signs.
const TRANSFER_TYPEHASH = keccak256(
  utf8.encode(
    `${transferWithAuthorizationPrimaryType}(${transferWithAuthorizationTypes.TransferWithAuthorization.map(
      (field) => `${field.type} ${field.name}`,
    ).join(",")})`,
  ),
);
const DOMAIN_TYPEHASH = keccak256(
  utf8.encode("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
);

/**
 * The `exact` EIP-3009 domain a PaymentRequirements entry implies, built the way @x402/evm does it:
 * `extra.name` / `extra.version`, the chain id parsed from `network` (never from an RPC), `asset`.
 */
export function domainFromRequirements(requirements: PaymentRequirements): Eip3009Domain {
  const name = requirements.extra?.name;
  const version = requirements.extra?.version;
  if (typeof name !== "string" || typeof version !== "string") {
    throw new X402Error(
      "invalid_exact_evm_missing_eip712_domain",
      `extra.name and extra.version are required for asset ${requirements.asset}`,
      { details: { asset: requirements.asset } },
    );
  }
  return {
    name,
    version,
    chainId: chainIdFromNetwork(requirements.network),
    verifyingContract: requirements.asset,
  };
}

// Bounded because the domain comes from requirements a caller may not control; a devnet sees a handful.
const DOMAIN_CACHE_LIMIT = 1024;
const domainCache = new Map<string, Uint8Array>();

/**
 * EIP-712 domain separator, memoised per (token, chain id, name, version).
 * The returned array is shared with the cache: read it, never write to it.
 */
export function eip712DomainSeparator(domain: Eip3009Domain): Uint8Array {
  const { name, version, chainId, verifyingContract } = domain;
  // The name's length is in the key so that no (name, version) pair can collide with another.
  const key = `${verifyingContract.toLowerCase()}|${chainId}|${name.length}|${name}|${version}`;
  const cached = domainCache.get(key);
  if (cached) return cached;

  const buf = new Uint8Array(160);
  const view = new DataView(buf.buffer);
  buf.set(DOMAIN_TYPEHASH, 0);
  buf.set(keccak256(utf8.encode(name)), 32);
  buf.set(keccak256(utf8.encode(version)), 64);
  if (!writeUint256(buf, view, 96, typeof chainId === "bigint" ? chainId.toString() : String(chainId))) {
    throw new X402Error("invalid_network", `chainId ${chainId} is not a uint256`, { details: { chainId } });
  }
  if (!writeHex(buf, 140, verifyingContract, 20)) {
    throw new X402Error(
      "invalid_payment_requirements",
      `verifyingContract ${verifyingContract} is not an address`,
      {
        details: { verifyingContract },
      },
    );
  }
  const separator = keccak256(buf);
  if (domainCache.size >= DOMAIN_CACHE_LIMIT) {
    domainCache.delete(domainCache.keys().next().value as string);
  }
  domainCache.set(key, separator);
  return separator;
}

/**
 * Writes the decimal string `value` as a big-endian uint256 into `buf[offset, offset + 32)`, overwriting every
 * byte. Returns false when `value` is not a decimal integer below 2^256.
 */
function writeUint256(buf: Uint8Array, view: DataView, offset: number, value: string): boolean {
  const length = value.length;
  if (length === 0) return false;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  buf.fill(0, offset, offset + 24);
  // Up to 15 digits the value is an exact double, which spares the BigInt for amounts and timestamps.
  if (length <= 15) {
    const n = Number(value);
    view.setUint32(offset + 24, Math.floor(n / 0x1_0000_0000));
    view.setUint32(offset + 28, n >>> 0);
    return true;
  }
  let n = BigInt(value);
  if (n > maxUint256) return false;
  for (let word = offset + 24; word >= offset; word -= 8) {
    view.setBigUint64(word, n & 0xffff_ffff_ffff_ffffn);
    n >>= 64n;
  }
  return true;
}

// Reused across calls: the digest is computed synchronously, and every call rewrites every field slot.
// Bytes 32..44 and 64..76 (address padding) are never written, so they stay zero.
const structBuf = new Uint8Array(224);
const structView = new DataView(structBuf.buffer);
structBuf.set(TRANSFER_TYPEHASH, 0);
const digestBuf = new Uint8Array(66);
digestBuf[0] = 0x19;
digestBuf[1] = 0x01;

function badField(field: string, expected: string): X402Error {
  return new X402Error("invalid_payload", `authorization.${field} must be ${expected}`, {
    details: { field },
  });
}

/**
 * EIP-712 digest of a `TransferWithAuthorization`, equal to viem's `hashTypedData` over the same domain and
 * message. The struct is ABI-encoded by hand into a reused buffer: this runs once per verified payment.
 * Addresses are not checksum-checked here (the bytes are what is signed); see `parseExactEvmPayload`.
 */
export function transferAuthorizationDigest(
  domainSeparator: Uint8Array,
  authorization: ExactEvmAuthorization,
): Uint8Array {
  if (domainSeparator.length !== 32) throw new TypeError("domainSeparator must be 32 bytes");
  const { from, to, value, validAfter, validBefore, nonce } = authorization;
  if (!writeHex(structBuf, 44, from, 20)) throw badField("from", "an address");
  if (!writeHex(structBuf, 76, to, 20)) throw badField("to", "an address");
  if (!writeUint256(structBuf, structView, 96, value)) throw badField("value", "a uint256 decimal string");
  if (!writeUint256(structBuf, structView, 128, validAfter)) {
    throw badField("validAfter", "a uint256 decimal string");
  }
  if (!writeUint256(structBuf, structView, 160, validBefore)) {
    throw badField("validBefore", "a uint256 decimal string");
  }
  if (!writeHex(structBuf, 192, nonce, 32)) throw badField("nonce", "32 bytes of hex");
  digestBuf.set(domainSeparator, 2);
  digestBuf.set(keccak256(structBuf), 34);
  return keccak256(digestBuf);
}
