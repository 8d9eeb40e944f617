import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { getAddress } from "viem";
import { BASE_NETWORK, USDC_ADDRESS, USDC_DECIMALS, USDC_NAME, USDC_VERSION } from "../chain/index.ts";
import {
  batchError,
  decodePaymentSignatureHeader,
  decodeXPaymentHeader,
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
  encodeSiwxChallenge,
  encodeXPaymentResponseHeader,
  HEADER_KEY,
  type Network,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
  type SettleResponse,
  SIGN_IN_WITH_X,
  SIWX_CHALLENGE_HEADER,
  SIWX_HEADER,
  v1NetworkName,
  X_PAYMENT_RESPONSE_HEADER,
  X402Error,
} from "../protocol/index.ts";
import {
  type BatchRequest,
  BatchSettlementPath,
  type ChannelManager,
  type ChannelSession,
  correctiveExtra,
  type PaywallBatchSettlementOptions,
} from "./batch-settlement/index.ts";
import { type Claim, PaymentClaims } from "./claims.ts";
import { FacilitatorClient, FacilitatorError, type FacilitatorRequest } from "./facilitator-client.ts";
import type { PaymentIdentity } from "./payment-schemes.ts";
import {
  acceptedMatches,
  type Offer,
  paymentRequired,
  paymentRequiredV1,
  v1PaymentMatches,
  v1Requirements,
} from "./requirements.ts";
import {
  type CompiledRoute,
  compileRoutes,
  type PaidRoute,
  type PaywallAsset,
  resolvePayTo,
} from "./routes.ts";
import { meteredAmount, SETTLEMENT_OVERRIDES_HEADER } from "./settlement-overrides.ts";
import { publicResource, type SessionsOptions, SiwxSessions } from "./siwx.ts";

const NO_HEADERS: ReadonlySet<string> = new Set();

export type { PaywallAsset };

export type PaywallOptions = {
  facilitatorUrl: string;
  /** Paid routes by `"METHOD /path"`, the path as registered with fastify. */
  routes: Record<string, PaidRoute>;
  /** CAIP-2 network the payments settle on (default `eip155:8453`). */
  network?: Network;
  /** Default: USDC at Base's address, `{ name: "USD Coin", version: "2" }`. */
  asset?: PaywallAsset;
  /**
   * Also take v1 `X-PAYMENT` payments, and answer 402s with a v1 body that legacy clients read, on the
   * routes whose payment path v1 has (`exact` by EIP-3009).
   */
  acceptV1?: boolean;
  /** Per facilitator call (default 10 s). */
  facilitatorTimeoutMs?: number;
  /** Settings shared by the routes that take SIWX sessions (`PaidRoute.sessions`). */
  sessions?: SessionsOptions;
  /** Settings of the `batch-settlement` routes: channel store, receiver authorizer, channel manager. */
  batchSettlement?: PaywallBatchSettlementOptions;
};

const managers = new WeakMap<FastifyInstance, ChannelManager>();

/**
 * The channel manager of the paywall registered on `app`, when it has `batch-settlement` routes: claim,
 * settle and refund on demand, beyond its schedules.
 */
export function channelManagerOf(app: FastifyInstance): ChannelManager | undefined {
  return managers.get(app);
}

export const USDC_ASSET: PaywallAsset = {
  address: USDC_ADDRESS,
  decimals: USDC_DECIMALS,
  extra: { name: USDC_NAME, version: USDC_VERSION },
};

const SETTLEMENT_PENDING = "settlement_pending";
const NONCE_USED = "invalid_exact_evm_nonce_already_used";
const SWEEP_INTERVAL_MS = 60_000;

type Payment = { version: 1 | 2; request: FacilitatorRequest; identity: PaymentIdentity };

type Timings = { verify?: number; settle?: number };

/** A paid request waiting for its handler's response, whichever way it is paid. */
type Served = {
  route: CompiledRoute;
  offer: Offer;
  payment: Payment;
  timings: Timings;
  /** Headers present before the handler ran: any other header is the handler's and goes with its body. */
  headersBefore: ReadonlySet<string>;
};

/** A verified (or, upfront, settled) payment waiting for its handler's response. */
type Pending = Served & {
  claim: Claim;
  /** Set in the upfront flow, where the payment settled before the handler. */
  settlement?: SettleResponse;
};

/** A channel payment whose channel is reserved until its charge is booked. */
type ChannelPending = Served & { session: ChannelSession };

type Response = { status: number; headers: Record<string, string>; body: unknown };

function serverTiming(timings: Timings): string | undefined {
  const parts = Object.entries(timings).map(([phase, ms]) => `${phase};dur=${ms.toFixed(1)}`);
  return parts.length > 0 ? parts.join(", ") : undefined;
}

/** Shared caches must not store a response that carries one payer's receipt (as @x402/core does). */
function withPrivate(cacheControl: string | undefined): string {
  if (!cacheControl) return "private";
  return cacheControl.split(",").some((d) => d.trim().toLowerCase() === "private")
    ? cacheControl
    : `${cacheControl}, private`;
}

async function paywall(app: FastifyInstance, options: PaywallOptions): Promise<void> {
  const network = options.network ?? BASE_NETWORK;
  const v1Network = options.acceptV1 ? v1NetworkName(network) : undefined;
  if (options.acceptV1 && !v1Network) {
    throw new Error(`x402 v1 has no name for ${network}; acceptV1 cannot be used`);
  }
  const routes = compileRoutes(options.routes, options.asset ?? USDC_ASSET);
  // The same for every request of a route: built once, frozen since every offer shares it. @x402/core marks
  // every flow but the default on the wire, so a client knows it pays before service.
  const extraOf = new Map<CompiledRoute, Readonly<Record<string, unknown>>>();
  const buildExtra = (route: CompiledRoute, more: Record<string, unknown> = {}) =>
    extraOf.set(
      route,
      Object.freeze({
        ...route.asset.extra,
        ...route.paymentScheme.extra,
        ...(route.flow === "upfront" ? { paymentFlow: "upfront" } : {}),
        ...more,
      }),
    );
  const facilitator = new FacilitatorClient(options.facilitatorUrl, options.facilitatorTimeoutMs ?? 10_000);
  const channelRoutes = [...routes.values()].filter((r) => r.paymentScheme.channels);
  const batch =
    channelRoutes.length > 0
      ? new BatchSettlementPath(network, facilitator, {
          ...options.batchSettlement,
          manager: {
            onError: (error) => app.log.error({ err: error }, "x402: a channel manager job failed"),
            ...options.batchSettlement?.manager,
          },
        })
      : undefined;
  const channelExtra = (route: CompiledRoute, receiverAuthorizer: string | undefined) =>
    batch && receiverAuthorizer && route.paymentScheme.channels
      ? batch.extra(route.amount, getAddress(receiverAuthorizer))
      : {};
  for (const route of routes.values()) buildExtra(route, channelExtra(route, batch?.receiverAuthorizer));
  if (batch) managers.set(app, batch.manager);
  const channelPending = new WeakMap<FastifyRequest, ChannelPending>();
  const claims = new PaymentClaims();
  const pending = new WeakMap<FastifyRequest, Pending>();
  const sessions = new SiwxSessions(network, options.sessions);
  const sessionOrigin = options.sessions?.origin ? publicOrigin(options.sessions.origin) : undefined;
  /** Requests served on a SIWX proof, with the offer their next challenge is made for. */
  const signedIn = new WeakMap<FastifyRequest, Offer>();
  const sweeper = setInterval(() => claims.sweep(Date.now() / 1000), SWEEP_INTERVAL_MS).unref();

  // A priced route that was never registered is usually a typo, and the real route would then be free.
  app.addHook("onReady", async () => {
    const missing = [...routes.values()].filter((r) => !app.hasRoute({ method: r.method, url: r.path }));
    if (missing.length > 0) {
      throw new Error(
        `x402 paywall: priced routes not registered: ${missing.map((r) => `${r.method} ${r.path}`).join(", ")}`,
      );
    }
    // Only the facilitator named in the signed witness may settle such a payment, so the 402 must name it.
    const naming = [...routes.values()].filter((r) => r.paymentScheme.namesFacilitator);
    // A channel names who authorizes claims and refunds: this server's key, else the facilitator's.
    const authorizing = batch?.receiverAuthorizer ? [] : channelRoutes;
    if (naming.length === 0 && authorizing.length === 0) {
      batch?.manager.start();
      return;
    }
    const { kinds } = await facilitator.supported();
    for (const route of authorizing) {
      const kind = kinds.find((k) => k.scheme === route.paymentScheme.scheme && k.network === network);
      const authorizer = kind?.extra?.receiverAuthorizer;
      if (typeof authorizer !== "string") {
        throw new Error(
          `x402 paywall: the facilitator lists no batch-settlement kind with extra.receiverAuthorizer on ${network}, which ${route.method} ${route.path} needs (or configure batchSettlement.receiverAuthorizer)`,
        );
      }
      buildExtra(route, channelExtra(route, authorizer));
    }
    for (const route of naming) {
      const kind = kinds.find((k) => k.scheme === route.paymentScheme.scheme && k.network === network);
      const address = kind?.extra?.facilitatorAddress;
      if (typeof address !== "string") {
        throw new Error(
          `x402 paywall: the facilitator lists no ${route.paymentScheme.scheme} kind with extra.facilitatorAddress on ${network}, which ${route.method} ${route.path} needs`,
        );
      }
      buildExtra(route, { facilitatorAddress: getAddress(address) });
    }
    batch?.manager.start();
  });
  app.addHook("onClose", async () => {
    clearInterval(sweeper);
    try {
      // Unclaimed vouchers are worth nothing once a payer's withdrawal finalizes: claim them while we can.
      await batch?.manager.close();
    } catch (error) {
      app.log.error({ err: error }, "x402: the channel manager's shutdown work failed");
    } finally {
      await facilitator.close();
    }
  });

  const sessionsFor = (route: CompiledRoute, request: FastifyRequest): Offer["sessions"] => {
    if (!route.sessions) return undefined;
    let origin = sessionOrigin;
    try {
      origin ??= new URL(`${request.protocol}://${request.host}`);
    } catch {
      // A Host that makes no origin (`a b`) cannot be signed in to; the request pays like any other.
      return undefined;
    }
    return { route: route.sessions, resource: publicResource(origin, request.url) };
  };

  const offerFor = async (route: CompiledRoute, request: FastifyRequest): Promise<Offer> => ({
    requirements: {
      scheme: route.paymentScheme.scheme,
      network,
      asset: route.asset.address,
      amount: route.amount,
      payTo: await resolvePayTo(route, request),
      maxTimeoutSeconds: route.maxTimeoutSeconds,
      extra: extraOf.get(route) ?? {},
    },
    resource: {
      url: `${request.protocol}://${request.host}${request.url}`,
      description: route.description,
      mimeType: route.mimeType,
    },
    v1Network: route.paymentScheme.v1 ? v1Network : undefined,
    sessions: sessionsFor(route, request),
  });

  const challengeFor = (offer: Offer) =>
    offer.sessions && sessions.challenge(offer.sessions.resource, offer.sessions.route);

  const paymentRequiredResponse = (offer: Offer, error: string, timings: Timings = {}): Response => {
    const timing = serverTiming(timings);
    const challenge = challengeFor(offer);
    const extensions = challenge ? { [SIGN_IN_WITH_X]: challenge } : {};
    return {
      status: 402,
      headers: {
        [PAYMENT_REQUIRED_HEADER]: encodePaymentRequiredHeader(paymentRequired(offer, error, extensions)),
        "cache-control": "no-store",
        ...(timing ? { "server-timing": timing } : {}),
      },
      body: offer.v1Network
        ? paymentRequiredV1(offer, offer.v1Network, error)
        : paymentRequired(offer, error),
    };
  };

  const receiptHeader = (payment: Payment, settlement: SettleResponse): Record<string, string> =>
    payment.version === 1
      ? { [X_PAYMENT_RESPONSE_HEADER]: encodeXPaymentResponseHeader(settlement) }
      : { [PAYMENT_RESPONSE_HEADER]: encodePaymentResponseHeader(settlement) };

  /** A failed settle: the 402 carries the receipt saying so, and the requirements to pay afresh. */
  const settlementRefused = (state: Served, settlement: SettleResponse): Response => {
    const refusal = paymentRequiredResponse(
      state.offer,
      settlement.errorReason ?? "settlement_failed",
      state.timings,
    );
    return { ...refusal, headers: { ...refusal.headers, ...receiptHeader(state.payment, settlement) } };
  };

  const facilitatorFailed = (error: FacilitatorError, timings: Timings): Response => {
    const timing = serverTiming(timings);
    return {
      status: 502,
      headers: { "cache-control": "no-store", ...(timing ? { "server-timing": timing } : {}) },
      body: {
        error: error.endpoint === "verify" ? "unexpected_verify_error" : "unexpected_settle_error",
        details: {
          reason: error.failure,
          message: error.message,
          ...(error.status ? { status: error.status } : {}),
        },
      },
    };
  };

  const send = (reply: FastifyReply, response: Response) =>
    reply.code(response.status).headers(response.headers).send(response.body);

  /** Decodes the payment header, or gives the response that refuses it. */
  const readPayment = (request: FastifyRequest, route: CompiledRoute, offer: Offer): Payment | Response => {
    const { v1Network } = offer;
    const v2Header = request.headers[HEADER_KEY.paymentSignature];
    const v1Header = v1Network ? request.headers[HEADER_KEY.xPayment] : undefined;
    const noMatch = () => paymentRequiredResponse(offer, "No matching payment requirements");
    try {
      if (typeof v2Header === "string") {
        const payload = decodePaymentSignatureHeader(v2Header);
        if (!acceptedMatches(offer.requirements, payload.accepted)) return noMatch();
        return {
          version: 2,
          request: { x402Version: 2, paymentPayload: payload, paymentRequirements: offer.requirements },
          identity: route.paymentScheme.identify(payload.payload, network, offer.requirements.asset),
        };
      }
      if (typeof v1Header === "string" && v1Network) {
        const payload = decodeXPaymentHeader(v1Header);
        if (!v1PaymentMatches(offer, payload)) return noMatch();
        return {
          version: 1,
          request: {
            x402Version: 1,
            paymentPayload: payload,
            paymentRequirements: v1Requirements(offer, v1Network),
          },
          identity: route.paymentScheme.identify(payload.payload, network, offer.requirements.asset),
        };
      }
      return paymentRequiredResponse(offer, "Payment required");
    } catch (error) {
      // The x402 v2 HTTP spec answers a malformed payment with 400; @x402/core's server treats an
      // undecodable header as absent and answers 402. A 400 tells a broken client it is broken.
      if (!(error instanceof X402Error)) throw error;
      return {
        status: 400,
        headers: {},
        body: { error: error.code, details: { message: error.message, ...error.details } },
      };
    }
  };

  /**
   * Settles and ends the claim. Retries once on `settlement_pending` and once on a transport failure or
   * 5xx: the facilitator settles an authorization at most once, so a repeat joins the first attempt.
   * That repeat answers `extra.duplicate`; so does a settle of a payment another server already used, which
   * must not buy a second response. Only a duplicate of a settle this server sent counts as paid.
   * `request` is the payment's, with the metered amount for `upto`.
   */
  const settle = async (state: Pending, request = state.payment.request): Promise<SettleResponse> => {
    const { claim, payment } = state;
    let sentBefore = claim.resubmission;
    let pendingRetried = false;
    let transportRetried = false;
    const started = performance.now();
    try {
      for (;;) {
        let settlement: SettleResponse;
        try {
          settlement = await facilitator.settle(request);
        } catch (error) {
          if (!(error instanceof FacilitatorError)) throw error;
          sentBefore ||= error.mayHaveActed;
          if (transportRetried || !error.retriable) throw error;
          transportRetried = true;
          continue;
        }
        if (!settlement.success && settlement.errorReason === SETTLEMENT_PENDING && !pendingRetried) {
          sentBefore = true;
          pendingRetried = true;
          continue;
        }
        if (settlement.success && settlement.extra?.duplicate === true && !sentBefore) {
          claim.spend();
          return {
            success: false,
            errorReason: NONCE_USED,
            errorMessage: "this payment was already settled for another request",
            transaction: "",
            network: settlement.network,
            ...(settlement.payer ? { payer: settlement.payer } : {}),
          };
        }
        if (settlement.success) {
          claim.spend();
          if (state.offer.sessions) {
            sessions.recordPayment(
              state.offer.sessions.resource.pathname,
              settlement.payer ?? payment.identity.payer,
            );
          }
        } else if (settlement.errorReason === SETTLEMENT_PENDING) claim.leaveUncertain();
        else claim.release();
        return settlement;
      }
    } catch (error) {
      if (sentBefore || !(error instanceof FacilitatorError)) claim.leaveUncertain();
      else claim.release();
      throw error;
    } finally {
      state.timings.settle = performance.now() - started;
    }
  };

  app.addHook("preHandler", async (request, reply) => {
    // fastify answers HEAD with the GET handler, so HEAD must cost what GET costs.
    const method = request.method === "HEAD" ? "GET" : request.method;
    const route = routes.get(`${method} ${request.routeOptions.url}`);
    if (!route) return;
    const offer = await offerFor(route, request);
    const proof = request.headers[SIWX_HEADER];
    if (offer.sessions && typeof proof === "string") {
      const verdict = await sessions.verify(proof, offer.sessions.resource);
      if (verdict.kind === "granted") {
        signedIn.set(request, offer);
        return;
      }
      // A proof that fails never stands in the way of a payment sent with it.
      const paying =
        request.headers[HEADER_KEY.paymentSignature] !== undefined ||
        (v1Network !== undefined && request.headers[HEADER_KEY.xPayment] !== undefined);
      if (!paying && verdict.kind === "refused")
        return send(reply, paymentRequiredResponse(offer, verdict.code));
      if (!paying && verdict.kind === "malformed") {
        return send(reply, {
          status: 400,
          headers: {},
          body: { error: "invalid_payload", details: { header: SIGN_IN_WITH_X, message: verdict.message } },
        });
      }
    }
    const payment = readPayment(request, route, offer);
    if ("status" in payment) return send(reply, payment);
    if (batch && route.paymentScheme.channels) {
      return channelPreHandler(request, reply, {
        route,
        offer,
        payment,
        timings: {},
        headersBefore: NO_HEADERS,
      });
    }

    const { nonceSpace, nonce, expiresAt } = payment.identity;
    const claim = claims.claim(nonceSpace, nonce, expiresAt);
    if (!claim) return send(reply, paymentRequiredResponse(offer, NONCE_USED));

    // headersBefore is taken once the handler may run; until then no header is the handler's.
    const state: Pending = { route, offer, payment, claim, timings: {}, headersBefore: NO_HEADERS };
    try {
      if (route.flow === "upfront") {
        const settlement = await settle(state);
        if (!settlement.success) return send(reply, settlementRefused(state, settlement));
        state.settlement = settlement;
      } else if (!claim.resubmission) {
        // A resubmission skips verify: the chain may show the nonce as used by this server's own settle.
        const started = performance.now();
        const verdict = await facilitator.verify(payment.request).finally(() => {
          state.timings.verify = performance.now() - started;
        });
        if (!verdict.isValid) {
          claim.release();
          return send(
            reply,
            paymentRequiredResponse(offer, verdict.invalidReason ?? "invalid_payment", state.timings),
          );
        }
      }
    } catch (error) {
      if (error instanceof FacilitatorError) {
        if (error.endpoint === "verify") claim.release();
        request.log.warn({ err: error }, "x402: facilitator failed");
        return send(reply, facilitatorFailed(error, state.timings));
      }
      claim.release();
      throw error;
    }
    state.headersBefore = new Set(Object.keys(reply.getHeaders()));
    pending.set(request, state);
  });

  app.addHook("onSend", async (request, reply, payload) => {
    const channelState = batch && channelPending.get(request);
    if (channelState) {
      channelPending.delete(request);
      return channelOnSend(request, reply, channelState, payload);
    }
    const sessionOffer = signedIn.get(request);
    if (sessionOffer) {
      signedIn.delete(request);
      keepPrivate(reply);
      nextChallenge(reply, sessionOffer);
      return payload;
    }
    const state = pending.get(request);
    if (!state) return payload;
    pending.delete(request);
    const { claim, timings } = state;

    if (state.settlement) {
      // Upfront: paid before the handler ran, so the receipt goes out whatever the handler answered.
      return deliver(reply, state, state.settlement, payload);
    }
    if (reply.statusCode >= 400) {
      // The handler failed: nothing is charged, and the authorization stays usable.
      claim.release();
      appendServerTiming(reply, timings);
      return payload;
    }
    if (request.raw.socket?.destroyed) {
      // The client is gone and would never see what it paid for.
      claim.release();
      return payload;
    }
    let settleRequest: FacilitatorRequest;
    try {
      settleRequest = meteredRequest(reply, state.route, state.payment.request);
    } catch (error) {
      // The handler metered nonsense: nothing is charged, and what it served is not sent unpaid.
      claim.release();
      request.log.error({ err: error }, "x402: the handler's settlement overrides are invalid");
      const body = { error: "invalid_settlement_overrides", details: { message: (error as Error).message } };
      return withhold(reply, state, payload, { status: 500, headers: {}, body });
    }
    let response: Response;
    try {
      const settlement = await settle(state, settleRequest);
      if (settlement.success) return deliver(reply, state, settlement, payload);
      response = settlementRefused(state, settlement);
    } catch (error) {
      // Thrown here, the error would reach fastify's error handler with the handler's headers still set.
      if (error instanceof FacilitatorError) {
        request.log.warn({ err: error }, "x402: facilitator failed");
        response = facilitatorFailed(error, timings);
      } else {
        request.log.error({ err: error }, "x402: settlement failed unexpectedly");
        response = { status: 500, headers: {}, body: { error: "unexpected_settle_error" } };
      }
    }
    return withhold(reply, state, payload, response);
  });

  /** A channel payment: checked against the books and reserved; a refund is settled here, without the handler. */
  async function channelPreHandler(
    request: FastifyRequest,
    reply: FastifyReply,
    served: Served,
  ): Promise<FastifyReply | undefined> {
    const { offer, payment, timings } = served;
    // Unreachable (a channel route takes v2 payments only, read into `identity.batch`), but never serve unpaid.
    if (!batch || payment.request.x402Version !== 2 || !payment.identity.batch) {
      throw new Error("x402 paywall: a channel payment without its channel payload");
    }
    const batchRequest: BatchRequest = payment.request;
    let begun: Awaited<ReturnType<typeof batch.channels.begin>>;
    const started = performance.now();
    try {
      begun = await batch.channels.begin(batchRequest, payment.identity.batch);
    } catch (error) {
      if (!(error instanceof FacilitatorError)) throw error;
      request.log.warn({ err: error }, "x402: facilitator failed");
      return send(reply, facilitatorFailed(error, timings));
    } finally {
      timings.verify = performance.now() - started;
    }
    if (begun.kind === "refused") {
      const { reason, channel } = begun.refusal;
      // The corrective 402: the books' state and latest voucher, from which the client resumes.
      const corrected =
        channel && reason === batchError("cumulative_amount_mismatch")
          ? {
              ...offer,
              requirements: {
                ...offer.requirements,
                extra: { ...offer.requirements.extra, ...correctiveExtra(channel) },
              },
            }
          : offer;
      return send(reply, paymentRequiredResponse(corrected, reason, timings));
    }
    const { session } = begun;
    if (session.payload.type === "refund") {
      let settlement: SettleResponse;
      const settleStarted = performance.now();
      try {
        settlement = await batch.channels.refund(session);
      } catch (error) {
        if (!(error instanceof FacilitatorError)) throw error;
        request.log.warn({ err: error }, "x402: facilitator failed");
        return send(reply, facilitatorFailed(error, timings));
      } finally {
        timings.settle = performance.now() - settleStarted;
      }
      if (!settlement.success) return send(reply, settlementRefused(served, settlement));
      const timing = serverTiming(timings);
      return send(reply, {
        status: 200,
        headers: {
          ...receiptHeader(payment, settlement),
          "cache-control": "private, no-store",
          ...(timing ? { "server-timing": timing } : {}),
        },
        body: { message: "Refund acknowledged", channelId: session.channelId },
      });
    }
    served.headersBefore = new Set(Object.keys(reply.getHeaders()));
    channelPending.set(request, { ...served, session });
    return undefined;
  }

  /** Books the charge of a served channel payment (a deposit also settles), or releases the channel. */
  async function channelOnSend(
    request: FastifyRequest,
    reply: FastifyReply,
    state: ChannelPending,
    payload: unknown,
  ): Promise<unknown> {
    if (!batch) return payload;
    const { session, timings } = state;
    if (reply.statusCode >= 400 || request.raw.socket?.destroyed) {
      // The handler failed or the client left: nothing is charged, and the channel is free again.
      await batch.channels.release(session);
      appendServerTiming(reply, timings);
      return payload;
    }
    let amount: bigint;
    try {
      const metered = meteredRequest(reply, state.route, state.payment.request);
      amount = BigInt(metered.x402Version === 2 ? metered.paymentRequirements.amount : state.route.amount);
    } catch (error) {
      await batch.channels.release(session);
      request.log.error({ err: error }, "x402: the handler's settlement overrides are invalid");
      const body = { error: "invalid_settlement_overrides", details: { message: (error as Error).message } };
      return withhold(reply, state, payload, { status: 500, headers: {}, body });
    }
    let response: Response;
    const started = performance.now();
    try {
      const settlement = await batch.channels.charge(session, amount);
      timings.settle = performance.now() - started;
      if (settlement.success) {
        if (state.offer.sessions) {
          sessions.recordPayment(state.offer.sessions.resource.pathname, state.payment.identity.payer);
        }
        return deliver(reply, state, settlement, payload);
      }
      response = settlementRefused(state, settlement);
    } catch (error) {
      timings.settle = performance.now() - started;
      if (error instanceof FacilitatorError) {
        request.log.warn({ err: error }, "x402: facilitator failed");
        response = facilitatorFailed(error, timings);
      } else {
        request.log.error({ err: error }, "x402: settlement failed unexpectedly");
        response = { status: 500, headers: {}, body: { error: "unexpected_settle_error" } };
      }
    }
    return withhold(reply, state, payload, response);
  }

  /**
   * The settle request of a metered payment: the amount the handler's `Settlement-Overrides` header names
   * (removed: it is for this server, not the client), else the price, which is the signed maximum.
   */
  function meteredRequest(
    reply: FastifyReply,
    route: CompiledRoute,
    request: FacilitatorRequest,
  ): FacilitatorRequest {
    if (!route.paymentScheme.metered) return request;
    const header = reply.getHeader(SETTLEMENT_OVERRIDES_HEADER);
    reply.removeHeader(SETTLEMENT_OVERRIDES_HEADER);
    if (typeof header !== "string" || request.x402Version !== 2) return request;
    const { paymentRequirements } = request;
    const amount = meteredAmount(header, BigInt(paymentRequirements.amount), route.asset.decimals);
    return { ...request, paymentRequirements: { ...paymentRequirements, amount: amount.toString() } };
  }

  function deliver(
    reply: FastifyReply,
    state: Served,
    settlement: SettleResponse,
    payload: unknown,
  ): unknown {
    reply.headers(receiptHeader(state.payment, settlement));
    keepPrivate(reply);
    nextChallenge(reply, state.offer);
    appendServerTiming(reply, state.timings);
    return payload;
  }

  /** A route with sessions hands out the challenge for the next proof with what it serves. */
  function nextChallenge(reply: FastifyReply, offer: Offer): void {
    const challenge = challengeFor(offer);
    if (challenge) reply.header(SIWX_CHALLENGE_HEADER, encodeSiwxChallenge(challenge));
  }

  /** Replaces the handler's response, headers included, with `response`; nothing of the handler's is sent. */
  function withhold(reply: FastifyReply, state: Served, payload: unknown, response: Response): string {
    for (const name of Object.keys(reply.getHeaders())) {
      if (!state.headersBefore.has(name)) reply.removeHeader(name);
    }
    if (payload && typeof (payload as { destroy?: unknown }).destroy === "function") {
      (payload as { destroy(): void }).destroy();
    }
    reply
      .code(response.status)
      .headers(response.headers)
      .header("content-type", "application/json; charset=utf-8");
    return JSON.stringify(response.body);
  }
}

/** The response was for one payer only: its receipt, or what its session unlocked. */
function keepPrivate(reply: FastifyReply): void {
  const cacheControl = reply.getHeader("cache-control");
  reply.header("cache-control", withPrivate(typeof cacheControl === "string" ? cacheControl : undefined));
}

/** A configured public origin, refused unless it is only scheme, host and port (as @x402/extensions does). */
function publicOrigin(origin: string): URL {
  const url = new URL(origin);
  if (
    (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.username ||
    url.password ||
    url.pathname !== "/" ||
    url.search ||
    url.hash
  ) {
    throw new TypeError(`x402 paywall: sessions.origin ${JSON.stringify(origin)} is not an http(s) origin`);
  }
  return url;
}

function appendServerTiming(reply: FastifyReply, timings: Timings): void {
  const timing = serverTiming(timings);
  if (!timing) return;
  const existing = reply.getHeader("server-timing");
  reply.header("server-timing", typeof existing === "string" && existing ? `${existing}, ${timing}` : timing);
}

/**
 * The paywall as a fastify plugin. It skips fastify's encapsulation (`skip-override`, what
 * `fastify-plugin` sets) because its hooks must reach routes registered outside the plugin: registered in
 * a child context they would guard only the routes inside that context, i.e. none.
 */
export const x402Paywall = Object.assign(paywall, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "x402-paywall",
});
