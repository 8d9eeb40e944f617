import type { FastifyRequest } from "fastify";
import { type Address, getAddress } from "viem";
import { type Price, toAtomicAmount } from "./price.ts";

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

export type PaidRoute = {
  price: Price;
  payTo: PayTo;
  description?: string;
  mimeType?: string;
  /** How long the payer's authorization must stay valid (default 300 s). */
  maxTimeoutSeconds?: number;
  flow?: PaymentFlow;
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
};

const ROUTE_KEY = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/\S*)$/;

/** Route keys are `"METHOD /path"` with the path written as it was registered with fastify (`/market/:seller`). */
export function compileRoutes(
  routes: Record<string, PaidRoute>,
  decimals: number,
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
    compiled.set(`${method} ${path}`, {
      method,
      path,
      amount: toAtomicAmount(route.price, decimals),
      payTo: typeof route.payTo === "function" ? route.payTo : getAddress(route.payTo),
      description: route.description ?? "",
      mimeType: route.mimeType ?? "",
      maxTimeoutSeconds,
      flow: route.flow ?? "authorization",
    });
  }
  return compiled;
}

/** The payee of one request, checksummed so the requirements are the same text every time. */
export async function resolvePayTo(route: CompiledRoute, request: FastifyRequest): Promise<Address> {
  return typeof route.payTo === "function" ? getAddress(await route.payTo(request)) : route.payTo;
}
