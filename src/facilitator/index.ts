import type { FastifyInstance } from "fastify";
import { signatureBackend } from "../protocol/index.ts";
import { type BatchSettlementOptions, BatchSettlementScheme } from "./batch-settlement/scheme.ts";
import { ExactEvmScheme, type ExactEvmSchemeOptions } from "./exact-evm/scheme.ts";
import { buildFacilitatorApp } from "./http.ts";
import type { FacilitatorMetrics } from "./metrics.ts";
import { createPermit2Schemes, type Permit2SchemesOptions } from "./permit2/scheme.ts";
import { type FacilitatorScheme, type SettlementLoad, settlementLoadOf } from "./scheme.ts";

export { type BatchSettlementOptions, BatchSettlementScheme } from "./batch-settlement/scheme.ts";
export { ExactEvmScheme, type ExactEvmSchemeOptions } from "./exact-evm/scheme.ts";
export { buildFacilitatorApp, type FacilitatorHttpOptions } from "./http.ts";
export { FacilitatorMetrics } from "./metrics.ts";
export type { Permit2Options } from "./permit2/relaying.ts";
export { Permit2Relaying } from "./permit2/relaying.ts";
export {
  createPermit2Schemes,
  Permit2Scheme,
  type Permit2SchemeOptions,
  type Permit2SchemesOptions,
} from "./permit2/scheme.ts";
export {
  type FacilitatorScheme,
  type SchemeRequest,
  type SettlementLoad,
  UpstreamUnavailableError,
} from "./scheme.ts";

export type FacilitatorOptions = {
  host?: string;
  /** Port to listen on; a free one when absent. */
  port?: number;
  /** The plugins to serve; by default `exact` on the given chain. */
  schemes?: readonly FacilitatorScheme[];
  /** Settings of the default `exact` scheme (required when `schemes` is absent). */
  exact?: ExactEvmSchemeOptions;
  /**
   * Also serve `exact` by Permit2 and `upto` on this chain (beside `schemes` or `exact`), from relayer keys
   * of their own.
   */
  permit2?: Permit2SchemesOptions;
  /**
   * Also serve `batch-settlement` on this chain (beside the others), from relayer keys of its own and with
   * the receiver authorizer it advertises.
   */
  batchSettlement?: BatchSettlementOptions;
  logger?: boolean;
};

export type Facilitator = {
  url: string;
  app: FastifyInstance;
  metrics: FacilitatorMetrics;
  /** Addresses that sign settlement transactions. */
  relayers: readonly string[];
  /** Its schemes' settlement pipelines added up, now: keys busy, settlements waiting for one. */
  settlementLoad(): SettlementLoad;
  stop(): Promise<void>;
};

/** Starts the reference facilitator over HTTP. */
export async function startFacilitator(options: FacilitatorOptions): Promise<Facilitator> {
  const permit2 = options.permit2 ? createPermit2Schemes(options.permit2) : undefined;
  const schemes = [
    ...(options.schemes ?? (options.exact ? [new ExactEvmScheme(options.exact)] : [])),
    ...(permit2 ? [permit2.exact, permit2.upto] : []),
    ...(options.batchSettlement ? [new BatchSettlementScheme(options.batchSettlement)] : []),
  ];
  if (schemes.length === 0) throw new Error("startFacilitator needs `schemes` or `exact` settings");
  const { app, metrics } = buildFacilitatorApp({ schemes, logger: options.logger });
  const host = options.host ?? "127.0.0.1";
  await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  if (signatureBackend !== "native") {
    process.stderr.write(
      "x402-devnet facilitator: native secp256k1 unavailable, verifying with the pure-JS fallback\n",
    );
  }
  return {
    url: `http://${host}:${port}`,
    app,
    metrics,
    relayers: [...new Set(schemes.flatMap((s) => Object.values(s.signers).flat()))],
    settlementLoad: () => settlementLoadOf(schemes),
    stop: () => app.close(),
  };
}
