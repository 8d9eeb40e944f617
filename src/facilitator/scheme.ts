import type {
  PaymentPayload,
  PaymentRequirements,
  SettleResponse,
  SupportedKind,
  VerifyResponse,
} from "../protocol/index.ts";

/**
 * A payment request as every scheme sees it: v2 shapes, whatever version came over the wire. A v1 request
 * is lifted to v2 at the door (network names become CAIP-2, `maxAmountRequired` becomes `amount`), and
 * `x402Version` says which version the answer must speak.
 */
export type SchemeRequest = {
  x402Version: 1 | 2;
  paymentPayload: PaymentPayload;
  paymentRequirements: PaymentRequirements;
};

/**
 * What a facilitator plugin implements, mirroring x402 V2's plugin architecture: a new scheme or chain
 * family is a new module registered with `createFacilitator({ schemes })`, not an edit of the routes.
 */
export interface FacilitatorScheme {
  /** The scheme name, e.g. `exact`. */
  readonly scheme: string;
  /** The (version, scheme, network) triples `/supported` lists. */
  readonly kinds: readonly SupportedKind[];
  /** CAIP family pattern → addresses that sign settlements, for `/supported.signers`. */
  readonly signers: Readonly<Record<string, readonly string[]>>;
  verify(request: SchemeRequest): Promise<VerifyResponse>;
  settle(request: SchemeRequest): Promise<SettleResponse>;
  /** JSON-RPC calls made so far, by method, for `/metrics`; a scheme that does not count leaves it out. */
  readonly rpcCalls?: { byMethod(): ReadonlyMap<string, number> };
  close?(): Promise<void>;
}

/**
 * A scheme could not reach what it checks payments against (its chain's node): nothing is known about the
 * payment, so it is not refused. The facilitator answers 502 `unexpected_verify_error` /
 * `unexpected_settle_error`, which a resource server passes on as its own 502, and a client may retry.
 */
export class UpstreamUnavailableError extends Error {
  override name = "UpstreamUnavailableError";
}
