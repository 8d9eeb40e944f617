import type { Address } from "viem";
import { BASE_NETWORK, USDC_ADDRESS, USDC_NAME, USDC_VERSION } from "../chain/index.ts";
import type { Network } from "../protocol/index.ts";
import type { Challenge, Offer } from "./challenge.ts";
import {
  type AgentPaymentMethod,
  isPaymentPath,
  PAYMENT_PATHS,
  type PaymentPath,
  pathOf,
  paymentMethod,
} from "./payment-methods.ts";
import { PolicyError, type PolicyReason } from "./refusal.ts";

/** A token the agent is willing to sign for, with the EIP-712 domain it expects the 402 to name. */
export type KnownAsset = { network: Network; address: Address; name: string; version: string };

/** USDC on Base, which the devnet places at its canonical address. */
export const BASE_USDC: KnownAsset = {
  network: BASE_NETWORK,
  address: USDC_ADDRESS,
  name: USDC_NAME,
  version: USDC_VERSION,
};

/**
 * What an agent may pay. Amounts are atomic units of the payment's asset; when several assets are known
 * they are assumed to share a unit (stablecoins with USDC's 6 decimals), because budgets add them up.
 */
export type SpendingPolicy = {
  /** Largest single payment (default 1_000_000n, $1 of USDC: the official client's default cap). */
  maxPerPayment?: bigint;
  /** Total this agent may spend over its lifetime (default: unlimited). */
  budgetPerRun?: bigint;
  /** Total per UTC day (default: unlimited). */
  budgetPerDay?: bigint;
  /**
   * Hosts the agent talks to at all, checked before every request including each redirect hop:
   * `"api.example.com"` (any port), `"127.0.0.1:4021"` (that port only) or `"*.example.com"`.
   * Default: any host.
   */
  allowedHosts?: readonly string[];
  /** Addresses the agent pays (default: any). */
  allowedRecipients?: readonly Address[];
  /** CAIP-2 networks the agent pays on (default: the networks of `assets`). */
  networks?: readonly Network[];
  /** Tokens the agent signs for (default: {@link BASE_USDC}). */
  assets?: readonly KnownAsset[];
  /** Longest authorization the agent signs, i.e. the largest `maxTimeoutSeconds` it accepts (default 3600). */
  maxAuthorizationSeconds?: number;
  /**
   * Most payments per URL over the agent's lifetime (default: unlimited). A payment takes its URL's slot
   * from the moment it is signed; only one the chain proves can never be used gives it back.
   */
  maxPaymentsPerUrl?: number;
  /**
   * What counts as one URL for `maxPaymentsPerUrl`, always read from the URL the caller asked for, before
   * any redirect (a server cannot choose it). `"origin+path"` (the default) drops the query string and
   * fragment, so cache busters and redirects to a fresh query do not open new slots; `"origin+path+query"`
   * is for APIs whose query string names distinct resources; a function maps the requested URL to any key.
   */
  perUrlKey?: "origin+path" | "origin+path+query" | ((requested: URL) => string);
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /**
   * The payment paths the agent pays by (default: all it speaks). An `upto` payment commits its signed
   * maximum: every budget counts the maximum, since the server's word on what it settled is not proof.
   * A Permit2 path needs the payer's `approve(Permit2, …)` of the token first.
   */
  paymentPaths?: readonly PaymentPath[];
  /**
   * Largest `batch-settlement` channel deposit (default `depositMultiplier × maxPerPayment`). A deposit
   * counts in full against every budget from the moment it is signed until it is refunded.
   */
  maxDeposit?: bigint;
  /** A channel's first deposit covers at least this many payments of its price (default 5). */
  depositMultiplier?: number;
};

export const DEFAULT_MAX_PER_PAYMENT = 1_000_000n;
const DEFAULT_MAX_AUTHORIZATION_SECONDS = 3600;
const DEFAULT_MAX_REDIRECTS = 5;

/** The policy's decisions that need no state: which hosts, and which of a 402's accepts. */
export type CompiledPolicy = {
  readonly maxRedirects: number;
  /** Throws `host_not_allowed` unless the agent may send a request to `url`. */
  checkHost(url: URL): void;
  /** The key `maxPaymentsPerUrl` counts a payment for `requested` (the caller's URL) under. */
  resourceKey(requested: URL): string;
  /**
   * The accept to pay and the path that pays it, or throws the reason the first accept (the server's
   * preference) was refused.
   */
  choose(challenge: Challenge): { offer: Offer; method: AgentPaymentMethod };
};

const RECOGNISED_FLOWS = new Set([undefined, "authorization", "upfront"]);

export function compilePolicy(policy: SpendingPolicy = {}): CompiledPolicy {
  const assets = policy.assets ?? [BASE_USDC];
  const assetByKey = new Map(assets.map((a) => [`${a.network}|${a.address.toLowerCase()}`, a]));
  const networks = new Set<string>(policy.networks ?? assets.map((a) => a.network));
  const recipients =
    policy.allowedRecipients && new Set(policy.allowedRecipients.map((r) => r.toLowerCase()));
  const maxPerPayment = policy.maxPerPayment ?? DEFAULT_MAX_PER_PAYMENT;
  const maxSeconds = policy.maxAuthorizationSeconds ?? DEFAULT_MAX_AUTHORIZATION_SECONDS;
  const hosts = policy.allowedHosts?.map((h) => h.toLowerCase());
  const perUrlKey = policy.perUrlKey ?? "origin+path";
  const paths = new Set<string>(policy.paymentPaths ?? PAYMENT_PATHS);

  const hostAllowed = (url: URL): boolean => {
    if (url.protocol !== "http:" && url.protocol !== "https:") return false;
    if (!hosts) return true;
    return hosts.some((entry) =>
      entry.startsWith("*.")
        ? url.hostname.endsWith(entry.slice(1))
        : entry === url.host || entry === url.hostname,
    );
  };

  /** The path that pays `offer`, or the first rule it breaks. */
  const refusal = (offer: Offer): AgentPaymentMethod | [PolicyReason, string] => {
    const { requirements } = offer;
    const path = pathOf(requirements);
    if (!isPaymentPath(path) || !paths.has(path)) return ["scheme_not_supported", path];
    const method = paymentMethod(path);
    if (offer.x402Version === 1 && !method.v1) return ["scheme_not_supported", `${path} in x402 v1`];
    const unpayable = method.refusal(requirements);
    if (unpayable) return ["scheme_not_supported", unpayable];
    if (!RECOGNISED_FLOWS.has(requirements.extra.paymentFlow as string | undefined)) {
      return ["scheme_not_supported", `payment flow ${String(requirements.extra.paymentFlow)}`];
    }
    if (!offer.network || !networks.has(offer.network)) {
      return ["network_not_allowed", `network ${offer.network ?? offer.v1Network}`];
    }
    const known = assetByKey.get(`${offer.network}|${requirements.asset.toLowerCase()}`);
    if (!known || requirements.extra.name !== known.name || requirements.extra.version !== known.version) {
      return [
        "asset_unknown",
        `asset ${requirements.asset} (${String(requirements.extra.name)} v${String(requirements.extra.version)}) on ${offer.network}`,
      ];
    }
    if (recipients && !recipients.has(offer.payTo.toLowerCase())) {
      return ["recipient_not_allowed", `recipient ${offer.payTo}`];
    }
    if (requirements.maxTimeoutSeconds > maxSeconds) {
      return [
        "authorization_too_long",
        `an authorization valid for ${requirements.maxTimeoutSeconds} s (at most ${maxSeconds} s)`,
      ];
    }
    if (offer.amount > maxPerPayment) {
      return ["max_per_payment", `${offer.amount} (at most ${maxPerPayment} per payment)`];
    }
    return method;
  };

  return {
    maxRedirects: policy.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    checkHost(url) {
      if (!hostAllowed(url)) throw new PolicyError("host_not_allowed", `host not allowed: ${url.origin}`);
    },
    resourceKey(requested) {
      if (typeof perUrlKey === "function") return perUrlKey(requested);
      // WHATWG URL already lowercased the host, dropped a default port and resolved dot segments.
      const base = `${requested.protocol}//${requested.host}${requested.pathname}`;
      return perUrlKey === "origin+path+query" ? `${base}${requested.search}` : base;
    },
    choose(challenge) {
      let chosen: { offer: Offer; method: AgentPaymentMethod } | undefined;
      let first: [PolicyReason, string] | undefined;
      for (const offer of challenge.offers) {
        const method = refusal(offer);
        if (Array.isArray(method)) {
          first ??= method;
          continue;
        }
        // Like the official client, prefer being charged after the handler succeeded over paying upfront.
        if (offer.requirements.extra.paymentFlow !== "upfront") return { offer, method };
        chosen ??= { offer, method };
      }
      if (chosen) return chosen;
      const [reason, what] = first ?? ["malformed_402", "no accepts"];
      throw new PolicyError(reason, `refused to pay ${what}`);
    },
  };
}

const DEFAULT_DEPOSIT_MULTIPLIER = 5;

/**
 * The channel deposit limits a policy implies: a first deposit covers `depositMultiplier` payments, and no
 * deposit exceeds `maxDeposit` (by default `depositMultiplier × maxPerPayment`, the official client's cap).
 */
export function channelLimits(policy: SpendingPolicy = {}): {
  maxDeposit: bigint;
  depositMultiplier: bigint;
} {
  const multiplier = policy.depositMultiplier ?? DEFAULT_DEPOSIT_MULTIPLIER;
  if (!Number.isSafeInteger(multiplier) || multiplier < 1) {
    throw new TypeError(`depositMultiplier must be a positive integer, got ${multiplier}`);
  }
  const depositMultiplier = BigInt(multiplier);
  const maxDeposit =
    policy.maxDeposit ?? depositMultiplier * (policy.maxPerPayment ?? DEFAULT_MAX_PER_PAYMENT);
  return { maxDeposit, depositMultiplier };
}
