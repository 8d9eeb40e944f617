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
  /**
   * The (version, scheme, network) triples it serves; `/supported` lists each triple once, however many
   * modules serve it (the EIP-3009 and Permit2 modules of `exact` share theirs).
   */
  readonly kinds: readonly SupportedKind[];
  /**
   * Whether this module takes a request its scheme and network already match, for a scheme served by
   * several modules, one per asset transfer method (`exact`: a payload carrying `permit2Authorization`
   * is Permit2's, any other EIP-3009's, as the SDK routes it). A module without it takes every request
   * of its kinds. Called on every request: a field test, no allocation.
   */
  accepts?(request: SchemeRequest): boolean;
  /** CAIP family pattern → addresses that sign settlements, for `/supported.signers`. */
  readonly signers: Readonly<Record<string, readonly string[]>>;
  verify(request: SchemeRequest): Promise<VerifyResponse>;
  settle(request: SchemeRequest): Promise<SettleResponse>;
  /** JSON-RPC calls made so far, by method, for `/metrics`; a scheme that does not count leaves it out. */
  readonly rpcCalls?: { byMethod(): ReadonlyMap<string, number> };
  /** Where settlements wait right now; a scheme that settles nothing of its own leaves it out. */
  settlementLoad?(): SettlementLoad;
  close?(): Promise<void>;
}

/** The schemes' settlement pipelines added up. */
export function settlementLoadOf(schemes: readonly FacilitatorScheme[]): SettlementLoad {
  const load: SettlementLoad = { relayers: 0, busy: 0, queued: 0 };
  for (const scheme of schemes) {
    const own = scheme.settlementLoad?.();
    if (!own) continue;
    load.relayers += own.relayers;
    load.busy += own.busy;
    load.queued += own.queued;
  }
  return load;
}

/**
 * A facilitator's settlement pipeline at one moment: whether settlements wait for a relayer key (every key
 * busy with a transaction not yet mined, the queue growing) or for the chain (keys free, blocks slow).
 */
export type SettlementLoad = {
  /** Relayer keys that sign settlements. */
  relayers: number;
  /** Keys with a transaction sent and not yet mined (one at a time per key). */
  busy: number;
  /** Settlements waiting for a free key. */
  queued: number;
};

/**
 * A scheme could not reach what it checks payments against (its chain's node): nothing is known about the
 * payment, so it is not refused. The facilitator answers 502 `unexpected_verify_error` /
 * `unexpected_settle_error`, which a resource server passes on as its own 502, and a client may retry.
 */
export class UpstreamUnavailableError extends Error {
  override name = "UpstreamUnavailableError";
}
