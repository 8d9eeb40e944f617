import { type Address, getAddress, type Hex, hashTypedData, isAddress } from "viem";
import { X402Error } from "./errors.ts";
import { isUint256String } from "./exact-payload.ts";

/**
 * The Permit2 payment paths' protocol facts: the canonical addresses the SDK hard-codes, the witness types
 * the proxies check a signature against, and the payload that carries it. One module for both schemes that
 * use Permit2 (`exact` with `assetTransferMethod: "permit2"`, and `upto`), which differ only in the witness.
 */

/** Uniswap's Permit2, at the same address on every chain. */
export const PERMIT2_ADDRESS: Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
/** The spender an `exact` Permit2 payment names: the proxy that settles it. */
export const X402_EXACT_PERMIT2_PROXY_ADDRESS: Address = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
/** The spender an `upto` payment names. */
export const X402_UPTO_PERMIT2_PROXY_ADDRESS: Address = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

/** The Permit2 schemes, by what their witness binds. */
export type Permit2Kind = "exact" | "upto";

/** The proxy each kind of payment must name as its spender. */
export const PERMIT2_SPENDER: Readonly<Record<Permit2Kind, Address>> = {
  exact: X402_EXACT_PERMIT2_PROXY_ADDRESS,
  upto: X402_UPTO_PERMIT2_PROXY_ADDRESS,
};

/** `exact`'s witness binds the payee; `upto`'s also the facilitator that alone may settle it. */
export type Permit2Witness = { to: Address; validAfter: string; facilitator?: Address };

/** `PaymentPayload.payload.permit2Authorization`: uint256 fields as decimal strings, as the SDK sends them. */
export type Permit2Authorization = {
  from: Address;
  permitted: { token: Address; amount: string };
  spender: Address;
  nonce: string;
  deadline: string;
  witness: Permit2Witness;
};

/** `PaymentPayload.payload` of a Permit2 payment; extensions (EIP-2612 sponsoring) travel beside it. */
export type Permit2Payload = { signature: Hex; permit2Authorization: Permit2Authorization };

const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})+$/;

/** The SDK's type objects (`permit2WitnessTypes`, `uptoPermit2WitnessTypes`): same digests as the proxies. */
const WITNESS_TYPES = {
  exact: [
    { name: "to", type: "address" },
    { name: "validAfter", type: "uint256" },
  ],
  upto: [
    { name: "to", type: "address" },
    { name: "facilitator", type: "address" },
    { name: "validAfter", type: "uint256" },
  ],
} as const;

/** The EIP-712 typed data a Permit2 payment signs, on `chainId`, for viem's `signTypedData`/`hashTypedData`. */
export function permit2TypedData(kind: Permit2Kind, chainId: number, authorization: Permit2Authorization) {
  const { permitted, witness } = authorization;
  return {
    domain: { name: "Permit2", chainId, verifyingContract: PERMIT2_ADDRESS },
    types: {
      PermitWitnessTransferFrom: [
        { name: "permitted", type: "TokenPermissions" },
        { name: "spender", type: "address" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
        { name: "witness", type: "Witness" },
      ],
      TokenPermissions: [
        { name: "token", type: "address" },
        { name: "amount", type: "uint256" },
      ],
      Witness: WITNESS_TYPES[kind],
    },
    primaryType: "PermitWitnessTransferFrom",
    message: {
      permitted: { token: getAddress(permitted.token), amount: BigInt(permitted.amount) },
      spender: getAddress(authorization.spender),
      nonce: BigInt(authorization.nonce),
      deadline: BigInt(authorization.deadline),
      witness: {
        to: getAddress(witness.to),
        ...(kind === "upto" ? { facilitator: getAddress(witness.facilitator as Address) } : {}),
        validAfter: BigInt(witness.validAfter),
      },
    },
  } as const;
}

/** The digest a Permit2 payment's signature is over. */
export function permit2Digest(kind: Permit2Kind, chainId: number, authorization: Permit2Authorization): Hex {
  return hashTypedData(permit2TypedData(kind, chainId, authorization) as Parameters<typeof hashTypedData>[0]);
}

function invalid(field: string, expected: string): X402Error {
  return new X402Error("invalid_payload", `payload.${field} must be ${expected}`, { details: { field } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function address(record: Record<string, unknown>, field: string, path: string): void {
  const value = record[field];
  if (typeof value !== "string" || !isAddress(value)) {
    throw invalid(`${path}${field}`, "an address (EIP-55 checksummed or lowercase)");
  }
}

function uint(record: Record<string, unknown>, field: string, path: string): void {
  if (!isUint256String(record[field])) throw invalid(`${path}${field}`, "a uint256 decimal string");
}

/**
 * Checks `PaymentPayload.payload` against the Permit2 shape of `kind` and returns it typed, or throws an
 * {@link X402Error} `invalid_payload` naming the first bad field (the SDK answers a malformed one with
 * `unsupported_payload_type`, which the facilitator maps it to; a resource server answers 400).
 */
export function parsePermit2Payload(kind: Permit2Kind, payload: unknown): Permit2Payload {
  if (!isRecord(payload)) throw invalid("", "an object");
  const { signature, permit2Authorization: auth } = payload;
  if (typeof signature !== "string" || !HEX_BYTES.test(signature)) {
    throw invalid("signature", "0x-prefixed hex bytes");
  }
  if (!isRecord(auth)) throw invalid("permit2Authorization", "an object");
  const path = "permit2Authorization.";
  address(auth, "from", path);
  address(auth, "spender", path);
  uint(auth, "nonce", path);
  uint(auth, "deadline", path);
  const { permitted, witness } = auth;
  if (!isRecord(permitted)) throw invalid(`${path}permitted`, "an object");
  address(permitted, "token", `${path}permitted.`);
  uint(permitted, "amount", `${path}permitted.`);
  if (!isRecord(witness)) throw invalid(`${path}witness`, "an object");
  address(witness, "to", `${path}witness.`);
  uint(witness, "validAfter", `${path}witness.`);
  if (kind === "upto") address(witness, "facilitator", `${path}witness.`);
  return payload as Permit2Payload;
}

/** Whether a payload takes the Permit2 path: the facilitator decides by its shape, as the SDK does. */
export function isPermit2Payload(payload: unknown): boolean {
  return isRecord(payload) && "permit2Authorization" in payload;
}
