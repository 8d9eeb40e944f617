import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import {
  type Network,
  networkFromV1,
  type PaymentPayload,
  type PaymentRequirements,
  type PaymentRequirementsV1,
  requirementsFromV1,
  type SettleResponse,
  type SupportedKind,
  type SupportedResponse,
  type VerifyResponse,
  X402Error,
} from "../protocol/index.ts";
import { FacilitatorMetrics } from "./metrics.ts";
import { type FacilitatorScheme, type SchemeRequest, UpstreamUnavailableError } from "./scheme.ts";

/** Bodies over this are refused: a payment request is a few hundred bytes. */
const BODY_LIMIT = 64 * 1024;

const requirementsV2 = {
  type: "object",
  required: ["scheme", "network", "asset", "amount", "payTo", "maxTimeoutSeconds"],
  properties: {
    scheme: { type: "string", minLength: 1 },
    network: { type: "string", pattern: "^[^:]+:.+$" },
    asset: { type: "string", minLength: 1 },
    amount: { type: "string", pattern: "^[0-9]+$" },
    payTo: { type: "string", minLength: 1 },
    maxTimeoutSeconds: { type: "integer", minimum: 0 },
    extra: { type: ["object", "null"] },
  },
  // batch-settlement's channel manager sends its claims, settles and refunds with `maxTimeoutSeconds: 0`
  // (nothing waits on them); every other scheme needs a window.
  if: { properties: { scheme: { const: "batch-settlement" } } },
  else: { properties: { maxTimeoutSeconds: { type: "integer", minimum: 1 } } },
} as const;

const requirementsV1 = {
  type: "object",
  required: ["scheme", "network", "asset", "maxAmountRequired", "payTo", "maxTimeoutSeconds"],
  properties: {
    scheme: { type: "string", minLength: 1 },
    network: { type: "string", minLength: 1 },
    asset: { type: "string", minLength: 1 },
    maxAmountRequired: { type: "string", pattern: "^[0-9]+$" },
    payTo: { type: "string", minLength: 1 },
    maxTimeoutSeconds: { type: "integer", minimum: 1 },
    extra: { type: ["object", "null"] },
  },
} as const;

/** `/verify` and `/settle` take the same body; fastify validates it before a handler runs. */
const paymentBody = {
  type: "object",
  required: ["paymentPayload", "paymentRequirements"],
  properties: {
    x402Version: { type: "integer", enum: [1, 2] },
    paymentPayload: {
      type: "object",
      required: ["x402Version", "payload"],
      properties: { x402Version: { type: "integer", enum: [1, 2] }, payload: { type: "object" } },
    },
    paymentRequirements: { type: "object" },
  },
  if: { properties: { paymentPayload: { type: "object", properties: { x402Version: { const: 1 } } } } },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
  then: {
    properties: {
      paymentPayload: { type: "object", required: ["scheme", "network"] },
      paymentRequirements: requirementsV1,
    },
  },
  else: {
    properties: {
      paymentPayload: {
        type: "object",
        required: ["accepted"],
        properties: { accepted: { type: "object", required: ["scheme", "network"] } },
      },
      paymentRequirements: requirementsV2,
    },
  },
} as const;

type WireBody = {
  x402Version?: 1 | 2;
  paymentPayload: Record<string, unknown> & { x402Version: 1 | 2; payload: Record<string, unknown> };
  paymentRequirements: Record<string, unknown>;
};

/** Lifts a v1 body (network names, `maxAmountRequired`, no `accepted`) to the v2 shapes the schemes take. */
function toSchemeRequest(body: WireBody): SchemeRequest {
  const version = body.paymentPayload.x402Version;
  if (version === 2) {
    return {
      x402Version: 2,
      paymentPayload: body.paymentPayload as unknown as PaymentPayload,
      paymentRequirements: body.paymentRequirements as unknown as PaymentRequirements,
    };
  }
  const r = body.paymentRequirements as unknown as PaymentRequirementsV1;
  const p = body.paymentPayload as unknown as {
    scheme: string;
    network: string;
    payload: Record<string, unknown>;
  };
  // The body schema has checked the fields' types already.
  const requirements = requirementsFromV1(r, networkFromV1(r.network));
  const accepted = { ...requirements, scheme: p.scheme, network: networkFromV1(p.network) };
  return {
    x402Version: 1,
    paymentPayload: { x402Version: 2, accepted, payload: p.payload },
    paymentRequirements: requirements,
  };
}

export type FacilitatorHttpOptions = { schemes: readonly FacilitatorScheme[]; logger?: boolean };

/**
 * The facilitator's HTTP face: `POST /verify`, `POST /settle`, `GET /supported`, `GET /health`,
 * `GET /metrics`. Like the reference, a refused payment is a 200 with `isValid:false` / `success:false`;
 * a malformed request is a 400 `{error, details}` (the reference answers 500 where it throws); nothing a
 * client sends yields a 500. A chain node that cannot be reached is a 502, not a refused payment.
 */
export function buildFacilitatorApp(options: FacilitatorHttpOptions): {
  app: FastifyInstance;
  metrics: FacilitatorMetrics;
} {
  const metrics = new FacilitatorMetrics(options.schemes);
  // No type coercion: "300" for a number is a client's mistake to report, not to repair.
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: { coerceTypes: false } },
  });

  const findScheme = (request: SchemeRequest): FacilitatorScheme | undefined => {
    const { scheme, network } = request.paymentRequirements;
    return options.schemes.find(
      (s) =>
        s.scheme === scheme &&
        s.kinds.some((k) => k.network === network) &&
        (s.accepts === undefined || s.accepts(request)),
    );
  };

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof UpstreamUnavailableError) {
      const code = request.url.startsWith("/settle") ? "unexpected_settle_error" : "unexpected_verify_error";
      return reply.code(502).send({ error: code, details: { message: error.message } });
    }
    if (error instanceof X402Error) {
      return reply
        .code(400)
        .send({ error: error.code, details: { message: error.message, ...error.details } });
    }
    if (error.validation) {
      return reply
        .code(400)
        .send({ error: "invalid_payload", details: { message: error.message, issues: error.validation } });
    }
    if (error.statusCode && error.statusCode < 500) {
      // Malformed JSON, a body over the limit, a wrong content type: all the client's doing.
      return reply
        .code(400)
        .send({ error: "invalid_payload", details: { message: error.message, code: error.code } });
    }
    app.log.error(error);
    return reply.code(500).send({ error: "unexpected_error", details: { message: error.message } });
  });

  const route = (name: "verify" | "settle") =>
    app.post<{ Body: WireBody }>(`/${name}`, { schema: { body: paymentBody } }, async (request) => {
      const timer = metrics.duration.startTimer({ route: name });
      const schemeRequest = toSchemeRequest(request.body);
      const scheme = findScheme(schemeRequest);
      try {
        if (name === "verify") {
          const result: VerifyResponse = scheme
            ? await scheme.verify(schemeRequest)
            : { isValid: false, invalidReason: unsupportedReason(options.schemes, schemeRequest) };
          metrics.requests.inc({
            route: name,
            outcome: result.isValid ? "valid" : "invalid",
            code: codeOf(result.invalidReason),
          });
          return result;
        }
        const result: SettleResponse = scheme
          ? await scheme.settle(schemeRequest)
          : {
              success: false,
              errorReason: unsupportedReason(options.schemes, schemeRequest),
              transaction: "",
              network: schemeRequest.paymentRequirements.network as Network,
            };
        metrics.requests.inc({
          route: name,
          outcome: result.success ? "settled" : "failed",
          code: codeOf(result.errorReason),
        });
        return result;
      } catch (error) {
        if (error instanceof X402Error)
          metrics.requests.inc({ route: name, outcome: "bad_request", code: error.code });
        throw error;
      } finally {
        timer();
      }
    });
  route("verify");
  route("settle");

  // The schemes are fixed for the app's life, so is what it supports. A kind served by several modules
  // (one per transfer method) is listed once, as the reference lists `exact` once; so is a shared signer.
  const signers: Record<string, string[]> = {};
  for (const scheme of options.schemes) {
    for (const [family, addresses] of Object.entries(scheme.signers)) {
      signers[family] = [...new Set([...(signers[family] ?? []), ...addresses])];
    }
  }
  const kinds = new Map<string, SupportedKind>();
  for (const kind of options.schemes.flatMap((s) => s.kinds)) {
    const key = `${kind.x402Version} ${kind.scheme} ${kind.network}`;
    if (!kinds.has(key)) kinds.set(key, kind);
  }
  const supported: SupportedResponse = { kinds: [...kinds.values()], extensions: [], signers };
  app.get("/supported", async () => supported);
  app.get("/health", async () => ({ status: "ok" }));
  app.get("/metrics", async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.addHook("onClose", async () => {
    await Promise.all(options.schemes.map((s) => s.close?.()));
  });
  return { app, metrics };
}

/**
 * `unsupported_scheme` when no plugin has the scheme, `invalid_network` when one has it on other networks,
 * `unsupported_payload_type` when the plugins serving it there all decline this payload's transfer method.
 */
function unsupportedReason(schemes: readonly FacilitatorScheme[], request: SchemeRequest) {
  const { scheme, network } = request.paymentRequirements;
  const named = schemes.filter((s) => s.scheme === scheme);
  if (named.length === 0) return "unsupported_scheme";
  return named.some((s) => s.kinds.some((k) => k.network === network))
    ? "unsupported_payload_type"
    : "invalid_network";
}

/**
 * The code of a reason, for the metrics label: a send error's reason carries the node's message after a
 * colon (`invalid_exact_evm_transaction_failed: …`), which would make a label value per message.
 */
function codeOf(reason: string | undefined): string {
  if (!reason) return "";
  const colon = reason.indexOf(":");
  return colon < 0 ? reason : reason.slice(0, colon);
}
