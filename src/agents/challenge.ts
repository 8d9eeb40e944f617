import { PaymentRequiredV1Schema } from "@x402/core/schemas";
import { type Address, getAddress, isAddress } from "viem";
import {
  decodePaymentRequiredHeader,
  HEADER_KEY,
  isUint256String,
  type Network,
  networkFromV1,
  PAYMENT_REQUIRED_HEADER,
  type PaymentRequired,
  type PaymentRequiredV1,
  type PaymentRequirements,
  type ResourceInfo,
  requirementsFromV1,
} from "../protocol/index.ts";
import type { ResponseHeaders } from "./http.ts";
import { PolicyError } from "./refusal.ts";

/** One accept of a 402, checked and lifted to v2's shape whatever version the server spoke. */
export type Offer = {
  x402Version: 1 | 2;
  /** As the server offered it (v1: lifted to v2 field names), echoed verbatim in a v2 `accepted`. */
  requirements: PaymentRequirements & { extra: Record<string, unknown> };
  /** CAIP-2 network, or undefined for a v1 network name this devnet does not know. */
  network: Network | undefined;
  /** The v1 network name, which a v1 `X-PAYMENT` must repeat. */
  v1Network: string | undefined;
  amount: bigint;
  /** Checksummed, as the official client signs it. */
  payTo: Address;
};

/** A 402's payment demand, in the form the agent decides on. */
export type Challenge = {
  x402Version: 1 | 2;
  offers: readonly Offer[];
  resource: ResourceInfo | undefined;
  extensions: Record<string, unknown> | undefined;
};

function malformed(message: string, cause?: unknown): PolicyError {
  return new PolicyError("malformed_402", message, cause === undefined ? undefined : { cause });
}

/**
 * Checks what a schema cannot: an amount the token could transfer, a payee that is an address, a whole
 * number of seconds. One bad accept condemns the whole 402: a server emitting garbage gets nothing.
 */
function toOffer(
  version: 1 | 2,
  requirements: PaymentRequirements,
  network: Network | undefined,
  v1Network: string | undefined,
): Offer {
  const { amount, payTo, maxTimeoutSeconds } = requirements;
  if (!isUint256String(amount)) throw malformed(`402 amount ${JSON.stringify(amount)} is not a uint256`);
  if (!isAddress(payTo, { strict: false }))
    throw malformed(`402 payTo ${JSON.stringify(payTo)} is not an address`);
  if (!Number.isSafeInteger(maxTimeoutSeconds) || maxTimeoutSeconds <= 0) {
    throw malformed(`402 maxTimeoutSeconds ${maxTimeoutSeconds} is not a positive integer`);
  }
  return {
    x402Version: version,
    requirements: { ...requirements, extra: requirements.extra ?? {} },
    network,
    v1Network,
    amount: BigInt(amount),
    payTo: getAddress(payTo),
  };
}

function fromV2(paymentRequired: PaymentRequired): Challenge {
  return {
    x402Version: 2,
    offers: paymentRequired.accepts.map((r) => toOffer(2, r, r.network, undefined)),
    resource: paymentRequired.resource,
    extensions: paymentRequired.extensions,
  };
}

function fromV1(paymentRequired: PaymentRequiredV1): Challenge {
  const offers = paymentRequired.accepts.map((r) => {
    let network: Network | undefined;
    try {
      network = networkFromV1(r.network);
    } catch {
      // Unknown names are left for the policy to refuse as a network, not as a malformed 402.
    }
    return toOffer(1, requirementsFromV1(r, network ?? (r.network as Network)), network, r.network);
  });
  return { x402Version: 1, offers, resource: undefined, extensions: undefined };
}

function parseV1(json: unknown): PaymentRequiredV1 {
  const parsed = PaymentRequiredV1Schema.safeParse(json);
  if (!parsed.success) throw malformed(`v1 402 body is invalid: ${parsed.error.issues[0]?.message}`);
  // Core's v1 type borrows v2's CAIP-2 template type for what is a plain name in v1.
  return parsed.data as PaymentRequiredV1;
}

// Load tests pay the same cached PaymentRequired thousands of times: it is checked once.
const checked = new WeakMap<object, Challenge>();

// A route without sessions answers every request with the same header, byte for byte: it is decoded once
// (and its challenge, keyed by the decoded object, checked once). Bounded: servers choose the headers.
const HEADER_CACHE_LIMIT = 256;
const decodedHeaders = new Map<string, PaymentRequired>();

function decodeHeader(header: string): PaymentRequired {
  let decoded = decodedHeaders.get(header);
  if (decoded) return decoded;
  try {
    decoded = decodePaymentRequiredHeader(header);
  } catch (error) {
    throw malformed(`${PAYMENT_REQUIRED_HEADER} does not decode: ${(error as Error).message}`, error);
  }
  if (decodedHeaders.size >= HEADER_CACHE_LIMIT) {
    const oldest = decodedHeaders.keys().next();
    if (!oldest.done) decodedHeaders.delete(oldest.value);
  }
  decodedHeaders.set(header, decoded);
  return decoded;
}

/**
 * The challenge of a 402: the v2 `PAYMENT-REQUIRED` header, else a v1 JSON body (as the official client
 * reads them), with the PaymentRequired it came from. `version` pins one of the two, to behave like a
 * client that only speaks it.
 */
export function challengeFromResponse(
  headers: ResponseHeaders,
  body: Uint8Array,
  version?: 1 | 2,
): { paymentRequired: PaymentRequired | PaymentRequiredV1; challenge: Challenge } {
  const header = headers[HEADER_KEY.paymentRequired];
  let paymentRequired: PaymentRequired | PaymentRequiredV1 | undefined;
  if (version !== 1 && typeof header === "string") {
    paymentRequired = decodeHeader(header);
  } else if (version !== 2 && body.length > 0) {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
    } catch {
      json = undefined;
    }
    if ((json as { x402Version?: unknown } | undefined)?.x402Version === 1) {
      // Parsed here already: its challenge is remembered so that it is not parsed again.
      const v1 = parseV1(json);
      checked.set(v1, fromV1(v1));
      paymentRequired = v1;
    }
  }
  if (!paymentRequired)
    throw malformed(`402 without a ${version === 1 ? "v1 body" : PAYMENT_REQUIRED_HEADER}`);
  return { paymentRequired, challenge: challengeFromPaymentRequired(paymentRequired) };
}

/** The challenge of a PaymentRequired (v2) or v1 402 body, e.g. one a caller kept from an earlier response. */
export function challengeFromPaymentRequired(
  paymentRequired: PaymentRequired | PaymentRequiredV1,
): Challenge {
  const hit = checked.get(paymentRequired);
  if (hit) return hit;
  let challenge: Challenge;
  if (paymentRequired.x402Version === 2) {
    if (!Array.isArray(paymentRequired.accepts) || paymentRequired.accepts.length === 0) {
      throw malformed("PaymentRequired has no accepts");
    }
    challenge = fromV2(paymentRequired);
  } else if (paymentRequired.x402Version === 1) {
    challenge = fromV1(parseV1(paymentRequired));
  } else {
    throw malformed(
      `unknown x402Version ${String((paymentRequired as { x402Version: unknown }).x402Version)}`,
    );
  }
  checked.set(paymentRequired, challenge);
  return challenge;
}
