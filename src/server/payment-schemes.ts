import type { Address } from "viem";
import {
  type BatchPayload,
  type Network,
  PERMIT2_ADDRESS,
  type Permit2Kind,
  parseBatchPayload,
  parseExactEvmPayload,
  parsePermit2Payload,
} from "../protocol/index.ts";

/** How the payer's tokens move: the token's own EIP-3009 authorization, or a Permit2 signature. */
export type AssetTransferMethod = "eip3009" | "permit2";

/** The x402 schemes a route can charge by. */
export type RouteScheme = "exact" | "upto" | "batch-settlement";

/** What makes a payment unique until the chain would refuse it anyway, and who pays. */
export type PaymentIdentity = {
  payer: Address;
  /**
   * Where its nonce lives, lowercase: a token's EIP-3009 nonces are per token and payer, Permit2's are per
   * owner across every token, so two Permit2 payments in different tokens still cannot share a nonce.
   */
  nonceSpace: string;
  nonce: bigint;
  /** Unix seconds after which the chain refuses it (`validBefore`, or Permit2's `deadline`). */
  expiresAt: number;
  /** A channel payment's payload, read once here for the channel books. */
  batch?: BatchPayload;
};

/**
 * One payment path as the paywall sees it: what its requirements add under `extra`, how its payload is read
 * and what it is claimed by. Selected per route by `scheme` and `assetTransferMethod`, as the official
 * client and facilitator select theirs.
 */
export type PaywallScheme = {
  readonly scheme: RouteScheme;
  readonly assetTransferMethod: AssetTransferMethod;
  /** x402 v1 has a shape for it (only `exact` by EIP-3009). */
  readonly v1: boolean;
  /** Added to the asset's EIP-712 domain under the requirements' `extra`. */
  readonly extra: Readonly<Record<string, unknown>>;
  /** `extra.facilitatorAddress` comes from the facilitator's `/supported` kind: only it may settle. */
  readonly namesFacilitator: boolean;
  /** The handler may settle less than the price, through `Settlement-Overrides`. */
  readonly metered: boolean;
  /**
   * Paid against a payment channel (`batch-settlement`): each payment is a voucher whose uniqueness is the
   * channel's cumulative total, kept by the channel books rather than by per-authorization claims, so the
   * paywall hands such a payment to its channel module instead of its verify/settle path.
   */
  readonly channels: boolean;
  /** Reads the payload; throws the `X402Error` `invalid_payload` naming the first bad field. */
  identify(payload: unknown, network: Network, asset: string): PaymentIdentity;
};

const exactEip3009: PaywallScheme = {
  scheme: "exact",
  assetTransferMethod: "eip3009",
  v1: true,
  extra: {},
  namesFacilitator: false,
  metered: false,
  channels: false,
  identify(payload, network, asset) {
    const { from, nonce, validBefore } = parseExactEvmPayload(payload).authorization;
    return {
      payer: from,
      nonceSpace: `${network}:${asset}:${from}`.toLowerCase(),
      nonce: BigInt(nonce),
      expiresAt: Number(validBefore),
    };
  },
};

function permit2Scheme(kind: Permit2Kind): PaywallScheme {
  return {
    scheme: kind,
    assetTransferMethod: "permit2",
    v1: false,
    extra: { assetTransferMethod: "permit2" },
    namesFacilitator: kind === "upto",
    metered: kind === "upto",
    channels: false,
    identify(payload, network) {
      const { from, nonce, deadline } = parsePermit2Payload(kind, payload).permit2Authorization;
      return {
        payer: from,
        nonceSpace: `${network}:${PERMIT2_ADDRESS}:${from}`.toLowerCase(),
        nonce: BigInt(nonce),
        expiresAt: Number(deadline),
      };
    },
  };
}

function batchScheme(method: AssetTransferMethod): PaywallScheme {
  return {
    scheme: "batch-settlement",
    assetTransferMethod: method,
    v1: false,
    extra: method === "permit2" ? { assetTransferMethod: "permit2" } : {},
    namesFacilitator: false,
    metered: true,
    channels: true,
    identify(payload) {
      const batch = parseBatchPayload(payload);
      // Not claimed like the others: a channel payment is made unique by its cumulative amount, in the books.
      return { payer: batch.channelConfig.payer, nonceSpace: "", nonce: 0n, expiresAt: 0, batch };
    },
  };
}

const SCHEMES: readonly PaywallScheme[] = [
  exactEip3009,
  permit2Scheme("exact"),
  permit2Scheme("upto"),
  batchScheme("eip3009"),
  batchScheme("permit2"),
];

/**
 * The module for a route's `scheme` and `assetTransferMethod` (default: `exact` and `batch-settlement` by
 * EIP-3009, and `upto`'s only method, Permit2); throws a TypeError naming the combinations that exist.
 */
export function paywallScheme(scheme: RouteScheme = "exact", method?: AssetTransferMethod): PaywallScheme {
  const wanted = method ?? (scheme === "upto" ? "permit2" : "eip3009");
  const found = SCHEMES.find((s) => s.scheme === scheme && s.assetTransferMethod === wanted);
  if (found) return found;
  const known = SCHEMES.map((s) => `${s.scheme}/${s.assetTransferMethod}`).join(", ");
  throw new TypeError(`no payment path ${scheme}/${wanted}; the paywall serves ${known}`);
}
