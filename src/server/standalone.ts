import Fastify, { type FastifyInstance, type HTTPMethods, type RouteHandlerMethod } from "fastify";
import { BASE_NETWORK } from "../chain/index.ts";
import { v1NetworkName } from "../protocol/index.ts";
import type { ChannelManager } from "./batch-settlement/index.ts";
import type { AssetTransferMethod, RouteScheme } from "./payment-schemes.ts";
import { channelManagerOf, type PaywallOptions, USDC_ASSET, x402Paywall } from "./plugin.ts";
import { compileRoutes } from "./routes.ts";

export type ResourceServerOptions = Omit<PaywallOptions, "acceptV1"> & {
  /**
   * Also take v1 `X-PAYMENT` payments and answer 402s with a v1 body (legacy `x402-fetch` 1.x reads only
   * that). `"auto"` does so when the network has a v1 name (`base`, `base-sepolia`, …) and otherwise
   * serves v2 alone, where `true` refuses to start: v1 cannot name a custom chain.
   */
  acceptV1?: boolean | "auto";
  /** Handlers by the same `"METHOD /path"` keys as `routes`; a route without one answers `{ path, paid: true }`. */
  handlers?: Record<string, RouteHandlerMethod>;
  host?: string;
  /** A free port when absent. */
  port?: number;
  logger?: boolean;
};

export type ListedRoute = {
  method: string;
  path: string;
  /** Atomic units of the asset. */
  price: string;
  /** `"dynamic"` when the payee is chosen per request. */
  payTo: string;
  scheme: RouteScheme;
  assetTransferMethod: AssetTransferMethod;
  asset: string;
};

export type ResourceServer = {
  url: string;
  app: FastifyInstance;
  routes: readonly ListedRoute[];
  /** Claims, settles and refunds the `batch-settlement` channels; present when a route takes that scheme. */
  channels: ChannelManager | undefined;
  stop(): Promise<void>;
};

const defaultHandlers: Record<string, RouteHandlerMethod> = {
  "GET /weather": async () => ({ location: "Base", temperatureC: 21, conditions: "sunny", paid: true }),
};

const echoHandler: RouteHandlerMethod = async (request) => ({ path: request.url, paid: true });

/** A fastify app serving the paid `routes` with JSON handlers behind the paywall, listening on `host`. */
export async function startResourceServer(options: ResourceServerOptions): Promise<ResourceServer> {
  const { handlers = {}, host = "127.0.0.1", port = 0, logger = false, acceptV1, ...rest } = options;
  const paywall: PaywallOptions = {
    ...rest,
    acceptV1: acceptV1 === "auto" ? v1NetworkName(rest.network ?? BASE_NETWORK) !== undefined : acceptV1,
  };
  const unpriced = Object.keys(handlers).filter((key) => !(key in paywall.routes));
  // A handler without a price would be served for free, which is never what a paid-route table means.
  if (unpriced.length > 0) throw new Error(`handlers without a price in routes: ${unpriced.join(", ")}`);

  const compiled = compileRoutes(paywall.routes, paywall.asset ?? USDC_ASSET);
  const app = Fastify({ logger });
  await app.register(x402Paywall, paywall);
  for (const [key, route] of compiled) {
    app.route({
      method: route.method as HTTPMethods,
      url: route.path,
      handler: handlers[key] ?? defaultHandlers[key] ?? echoHandler,
    });
  }
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://${host}:${boundPort}`,
    app,
    routes: [...compiled.values()].map((route) => ({
      method: route.method,
      path: route.path,
      price: route.amount,
      payTo: typeof route.payTo === "function" ? "dynamic" : route.payTo,
      scheme: route.paymentScheme.scheme,
      assetTransferMethod: route.paymentScheme.assetTransferMethod,
      asset: route.asset.address,
    })),
    channels: channelManagerOf(app),
    stop: () => app.close(),
  };
}
