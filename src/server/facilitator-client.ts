import { Pool } from "undici";
import type {
  PaymentPayload,
  PaymentPayloadV1,
  PaymentRequirements,
  PaymentRequirementsV1,
  SettleResponse,
  SupportedResponse,
  VerifyResponse,
} from "../protocol/index.ts";

/** A `/verify` or `/settle` body, in the protocol version the client paid with. */
export type FacilitatorRequest =
  | { x402Version: 2; paymentPayload: PaymentPayload; paymentRequirements: PaymentRequirements }
  | { x402Version: 1; paymentPayload: PaymentPayloadV1; paymentRequirements: PaymentRequirementsV1 };

export type FacilitatorFailure = "unreachable" | "timeout" | "bad_status" | "bad_response";

/**
 * The facilitator did not give a usable answer. `mayHaveActed` is false only when the request provably
 * never took effect (no connection was made, or the facilitator refused it with a 4xx): after anything else
 * a settle may have moved money, and the caller must treat the payment as possibly spent.
 */
export class FacilitatorError extends Error {
  override name = "FacilitatorError";
  readonly mayHaveActed: boolean;
  readonly status: number | undefined;

  constructor(
    readonly endpoint: "verify" | "settle",
    readonly failure: FacilitatorFailure,
    message: string,
    options: { mayHaveActed: boolean; status?: number; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.mayHaveActed = options.mayHaveActed;
    this.status = options.status;
  }

  /** Worth one more attempt: the facilitator may answer next time, and repeating a settle is idempotent. */
  get retriable(): boolean {
    return this.failure === "unreachable" || this.failure === "timeout" || (this.status ?? 0) >= 500;
  }
}

/** Errors raised before a single byte reached the facilitator. */
const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const optionalString = (value: unknown) => value === undefined || typeof value === "string";

function isVerifyResponse(value: unknown): value is VerifyResponse {
  return isRecord(value) && typeof value.isValid === "boolean" && optionalString(value.invalidReason);
}

function isSettleResponse(value: unknown): value is SettleResponse {
  return (
    isRecord(value) &&
    typeof value.success === "boolean" &&
    typeof value.transaction === "string" &&
    typeof value.network === "string" &&
    optionalString(value.errorReason) &&
    (value.extra === undefined || isRecord(value.extra))
  );
}

/**
 * The resource server's side of the facilitator HTTP API, on a keep-alive undici pool: `/verify` and
 * `/settle` sit on every paid request's path, so connection setup must not.
 */
export class FacilitatorClient {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    const parsed = new URL(url);
    this.pool = new Pool(parsed.origin);
    this.basePath = parsed.pathname.replace(/\/+$/, "");
  }

  async verify(request: FacilitatorRequest): Promise<VerifyResponse> {
    return this.post("verify", request, isVerifyResponse);
  }

  async settle(request: FacilitatorRequest): Promise<SettleResponse> {
    return this.post("settle", request, isSettleResponse);
  }

  /**
   * `/supported`, read once when the paywall starts, for what a kind adds under `extra` (upto's
   * `facilitatorAddress`). Throws an Error saying what went wrong: the paywall cannot start without it.
   */
  async supported(): Promise<SupportedResponse> {
    let body: unknown;
    try {
      const response = await this.pool.request({
        path: `${this.basePath}/supported`,
        method: "GET",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
      body = JSON.parse(text);
    } catch (error) {
      throw new Error(`the facilitator's /supported could not be read: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!Array.isArray((body as { kinds?: unknown } | null)?.kinds)) {
      throw new Error("the facilitator's /supported has no kinds");
    }
    return body as SupportedResponse;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async post<T>(
    endpoint: "verify" | "settle",
    request: FacilitatorRequest,
    isAnswer: (value: unknown) => value is T,
  ): Promise<T> {
    let status: number;
    let text: string;
    try {
      const response = await this.pool.request({
        path: `${this.basePath}/${endpoint}`,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if ((error as Error).name === "TimeoutError") {
        const message = `no answer within ${this.timeoutMs} ms`;
        throw new FacilitatorError(endpoint, "timeout", message, { mayHaveActed: true, cause: error });
      }
      const code = (error as { code?: unknown }).code;
      const connectFailed = typeof code === "string" && CONNECT_ERRORS.has(code);
      const message = (error as Error).message;
      throw new FacilitatorError(endpoint, "unreachable", message, {
        mayHaveActed: !connectFailed,
        cause: error,
      });
    }
    const excerpt = text.slice(0, 200);
    if (status < 200 || status >= 300) {
      // A 4xx is the facilitator refusing the request as malformed: it did nothing with it.
      const mayHaveActed = status >= 500;
      throw new FacilitatorError(endpoint, "bad_status", `HTTP ${status}: ${excerpt}`, {
        mayHaveActed,
        status,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new FacilitatorError(endpoint, "bad_response", `not JSON: ${excerpt}`, {
        mayHaveActed: true,
        status,
      });
    }
    if (!isAnswer(body)) {
      const message = `not a ${endpoint} response: ${excerpt}`;
      throw new FacilitatorError(endpoint, "bad_response", message, { mayHaveActed: true, status });
    }
    return body;
  }
}
