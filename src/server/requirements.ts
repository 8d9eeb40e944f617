import type {
  PaymentPayload,
  PaymentPayloadV1,
  PaymentRequired,
  PaymentRequiredV1,
  PaymentRequirements,
  PaymentRequirementsV1,
  ResourceInfo,
} from "../protocol/index.ts";
import type { SessionRoute } from "./siwx.ts";

/** What one request to a paid route is offered: the requirements and the resource they pay for. */
export type Offer = {
  requirements: PaymentRequirements;
  resource: ResourceInfo & { description: string; mimeType: string };
  /** The network's v1 name (`base`), when v1 payments are accepted. */
  v1Network: string | undefined;
  /** Set when the route takes SIWX sessions: its settings, and the resource as proofs must name it. */
  sessions?: { route: SessionRoute; resource: URL };
};

export function paymentRequired(
  offer: Offer,
  error: string,
  extensions: Record<string, unknown> = {},
): PaymentRequired {
  return { x402Version: 2, error, resource: offer.resource, accepts: [offer.requirements], extensions };
}

/** The requirements in v1's shape: a network name, `maxAmountRequired`, and the resource inline. */
export function v1Requirements(offer: Offer, v1Network: string): PaymentRequirementsV1 {
  const { requirements, resource } = offer;
  return {
    scheme: requirements.scheme,
    // Core's v1 type borrows v2's CAIP-2 template type for what is a plain name in v1.
    network: v1Network as PaymentRequirementsV1["network"],
    maxAmountRequired: requirements.amount,
    resource: resource.url,
    description: resource.description,
    mimeType: resource.mimeType,
    outputSchema: {},
    payTo: requirements.payTo,
    maxTimeoutSeconds: requirements.maxTimeoutSeconds,
    asset: requirements.asset,
    extra: requirements.extra,
  };
}

export function paymentRequiredV1(offer: Offer, v1Network: string, error: string): PaymentRequiredV1 {
  return { x402Version: 1, error, accepts: [v1Requirements(offer, v1Network)] };
}

/**
 * The rule @x402/core's server applies to `accepted`: every field it offered, exactly (so a client cannot
 * pick its own price or payee), with no unknown top-level field; the client may only add keys under
 * `extra`. Addresses are compared as strings, as the offer and the client's echo of it are the same text.
 */
export function acceptedMatches(offered: PaymentRequirements, accepted: PaymentPayload["accepted"]): boolean {
  const { extra: offeredExtra, ...offeredCore } = offered;
  const { extra: acceptedExtra, ...acceptedCore } = accepted;
  const offeredKeys = Object.keys(offeredCore);
  if (Object.keys(acceptedCore).length !== offeredKeys.length) return false;
  for (const key of offeredKeys) {
    if (
      !sameJson(offeredCore[key as keyof typeof offeredCore], acceptedCore[key as keyof typeof acceptedCore])
    ) {
      return false;
    }
  }
  return containsSubset(offeredExtra, acceptedExtra);
}

/** A v1 payment names only scheme and network; amount and payee are checked by the facilitator's verify. */
export function v1PaymentMatches(offer: Offer, payment: PaymentPayloadV1): boolean {
  return payment.scheme === offer.requirements.scheme && payment.network === offer.v1Network;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  return aKeys.every(
    (key) =>
      Object.hasOwn(b, key) &&
      sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}

function containsSubset(expected: unknown, actual: unknown): boolean {
  if (typeof expected !== "object" || expected === null || Array.isArray(expected))
    return sameJson(expected, actual);
  if (typeof actual !== "object" || actual === null || Array.isArray(actual)) return false;
  return Object.entries(expected).every(
    ([key, value]) =>
      Object.hasOwn(actual, key) && containsSubset(value, (actual as Record<string, unknown>)[key]),
  );
}
