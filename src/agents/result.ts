import type { Address, Hex } from "viem";
import type { Network } from "../protocol/index.ts";
import type { WireCounts } from "./http.ts";
import type { PaymentPath } from "./payment-methods.ts";

/**
 * How one request went.
 * - `free`: the server served the request without asking for payment: a 2xx or 3xx other than a redirect
 *   the agent followed. Nothing was signed.
 * - `paid`: a payment was sent and the server served the request (status < 400); `transaction` is the
 *   settlement hash when the server sent a receipt.
 * - `refused_by_policy`: the agent's policy refused; nothing was signed. `errorCode` is the {@link PolicyError} reason.
 * - `payment_failed`: a payment was sent and the server refused it or failed; `errorCode` is the x402 code
 *   it gave (receipt `errorReason`, the 402's `error`, or a 4xx/5xx body's `error`), else `http_<status>`.
 *   The signed authorization stays in `agent.outstanding` (and in the budgets) until the chain proves it
 *   dead: a server that says no can still settle it.
 * - `session`: a Sign-In-With-X proof for a resource paid before was sent and the server served the
 *   request (2xx or 3xx) without asking for payment. Nothing was paid.
 * - `error`: the request was not served and no payment was refused: a 5xx or a 4xx other than 402 to the
 *   unpaid request or to a session proof (`errorCode` `http_<status>`; for a proof, the body's `error`
 *   when it names one), or no answer at all (connection refused or reset, timeout, abort; `errorCode` is
 *   the transport error's code, e.g. `ECONNRESET`, `UND_ERR_HEADERS_TIMEOUT`). If `amount` is set, a
 *   payment was already sent and may still settle: it is outstanding.
 *
 * A paid route that starts failing is therefore never `free`, and error-rate thresholds see it. A session
 * answered with an error is `error`, not `session`, for the same reason: `session` counts served requests.
 */
export type AgentOutcome = "paid" | "free" | "session" | "refused_by_policy" | "payment_failed" | "error";

/** Milliseconds, from `performance.now()`. Each phase ends once the response body has been read. */
export type AgentTimings = {
  /** First request (and its redirects) until the 402 was read; absent when paying a cached challenge. */
  challenge?: number;
  /**
   * Policy checks, budget reservation, signing and encoding the payment header; for a `session`, signing
   * the SIWX proof (both, when a proof was answered with a fresh challenge).
   */
  sign?: number;
  /** Paid request until its response was read. */
  paid?: number;
  /** The whole call. */
  e2e: number;
  /** The server's facilitator verify / settle, from its `Server-Timing` header. */
  verify?: number;
  settle?: number;
};

/** The result of `agent.request()` / `agent.pay()`, which the scenario runner aggregates. */
export type AgentResult = {
  /** HTTP status of the last response, 0 when there was none. */
  status: number;
  outcome: AgentOutcome;
  errorCode?: string;
  /** What the sent payment was for, in atomic units of `asset`: on a metered path, the signed maximum. */
  amount?: bigint;
  /**
   * On a metered path (`upto`, a channel's voucher), what the server's receipt says it charged: its word,
   * which the run's invariants hold against the chain (never above the price for a voucher). Absent when
   * the receipt names no amount.
   */
  charged?: bigint;
  /** The payment path the sent payment took. */
  path?: PaymentPath;
  payTo?: Address;
  asset?: Address;
  network?: Network;
  transaction?: Hex;
  timings: AgentTimings;
  /** The last response's body: parsed when it is JSON, else text; absent when empty. */
  body?: unknown;
  /** The URL of the last response, after redirects. */
  url?: string;
  /** The policy or transport error behind `refused_by_policy` / `error`. */
  error?: Error;
  /** HTTP requests this call sent and the bytes both ways (`agent.request` and `agent.pay`). */
  wire?: WireCounts;
};
