import type { FastifyRequest } from "fastify";
import { type Address, getAddress } from "viem";
import {
  type AssetTransferMethod,
  type PaywallScheme,
  paywallScheme,
  type RouteScheme,
} from "./payment-schemes.ts";
import { type Price, toAtomicAmount } from "./price.ts";
import type { SessionRoute } from "./siwx.ts";

/**
 * `authorization` (the default): verify, run the handler, settle only if it succeeded.
 * `upfront`: settle first, then run the handler; the payer is charged even if the handler fails.
 */
export type PaymentFlow = "authorization" | "upfront";

/**
 * Who is paid: a fixed address, or one chosen per request (a marketplace paying the seller in the path).
 * A function must give the same address for the same request, because the paid retry is matched against
 * the requirements rebuilt for it.
 */
export type PayTo = Address | ((request: FastifyRequest) => Address | Promise<Address>);

/** The token a route is priced in. `decimals` converts dollar prices; `extra` is the EIP-712 domain. */
export type PaywallAsset = { address: Address; decimals: number; extra: Record<string, unknown> };

export type PaidRoute = {
  /** For `upto`, the most one request may be charged: the handler meters the rest (`setSettlementOverrides`). */
  price: Price;
  payTo: PayTo;
  description?: string;
  mimeType?: string;
  /** How long the payer's authorization must stay valid (default 300 s). */
  maxTimeoutSeconds?: number;
  flow?: PaymentFlow;
  /**
   * Sign-In-With-X: the 402 declares `sign-in-with-x`, and a payer who paid for the path once is served
   * again on a signed SIWX proof, without paying. `true` takes the defaults.
   */
  sessions?: boolean | SessionRoute;
  /** `exact` (the default) charges the price; `upto` charges what the handler metered, at most the price. */
  scheme?: RouteScheme;
  /** How the payer's tokens move (default `eip3009` for `exact`; `upto` takes `permit2` only). */
  assetTransferMethod?: AssetTransferMethod;
  /** The token this route is priced in (default: the paywall's). */
  asset?: PaywallAsset;
};

export type CompiledRoute = {
  method: string;
  path: string;
  amount: string;
  payTo: PayTo;
  description: string;
  mimeType: string;
  maxTimeoutSeconds: number;
  flow: PaymentFlow;
  sessions: SessionRoute | undefined;
  paymentScheme: PaywallScheme;
  asset: PaywallAsset;
};

const ROUTE_KEY = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/\S*)$/;

/** Route keys are `"METHOD /path"` with the path written as it was registered with fastify (`/market/:seller`). */
export function compileRoutes(
  routes: Record<string, PaidRoute>,
  defaultAsset: PaywallAsset,
): Map<string, CompiledRoute> {
  const compiled = new Map<string, CompiledRoute>();
  for (const [key, route] of Object.entries(routes)) {
    const match = ROUTE_KEY.exec(key);
    if (!match) throw new TypeError(`x402 route key ${JSON.stringify(key)} is not "METHOD /path"`);
    const [, method = "", path = ""] = match;
    const maxTimeoutSeconds = route.maxTimeoutSeconds ?? 300;
    if (!Number.isSafeInteger(maxTimeoutSeconds) || maxTimeoutSeconds <= 0) {
      throw new RangeError(`x402 route ${key}: maxTimeoutSeconds must be a positive integer`);
    }
    const sessions = route.sessions === true ? {} : route.sessions || undefined;
    const expiration = sessions?.expirationSeconds;
    if (expiration !== undefined && !(Number.isFinite(expiration) && expiration > 0)) {
      throw new RangeError(`x402 route ${key}: sessions.expirationSeconds must be a positive number`);
    }
    let paymentScheme: PaywallScheme;
    try {
      paymentScheme = paywallScheme(route.scheme, route.assetTransferMethod);
    } catch (error) {
      throw new TypeError(`x402 route ${key}: ${(error as Error).message}`);
    }
    // The official server offers `upto` in the authorization flow only: a metered amount needs the handler.
    if (paymentScheme.metered && route.flow === "upfront") {
      throw new TypeError(`x402 route ${key}: an ${paymentScheme.scheme} payment cannot be settled upfront`);
    }
    const asset = route.asset ?? defaultAsset;
    compiled.set(`${method} ${path}`, {
      method,
      path,
      amount: toAtomicAmount(route.price, asset.decimals),
      payTo: typeof route.payTo === "function" ? route.payTo : getAddress(route.payTo),
      description: route.description ?? "",
      mimeType: route.mimeType ?? "",
      maxTimeoutSeconds,
      flow: route.flow ?? "authorization",
      sessions,
      paymentScheme,
      asset,
    });
  }
  return compiled;
}

/** The payee of one request, checksummed so the requirements are the same text every time. */
export async function resolvePayTo(route: CompiledRoute, request: FastifyRequest): Promise<Address> {
  return typeof route.payTo === "function" ? getAddress(await route.payTo(request)) : route.payTo;
}
