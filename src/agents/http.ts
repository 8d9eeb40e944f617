import { type Dispatcher, errors, Agent as UndiciAgent } from "undici";
import { HEADER_KEY } from "../protocol/index.ts";

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A request as the agent sends it, possibly several times (redirects, the paid retry): the body is bytes. */
export type PreparedRequest = {
  method: string;
  /** Lowercase names. */
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
  signal: AbortSignal | undefined;
  redirect: "follow" | "manual" | "error";
  /** Where `send` counts this call's traffic; redirects copy the request, and with it the counter. */
  wire?: WireCounts;
};

/**
 * HTTP traffic of one agent call: the scenario's cost per paid request. Bytes are the HTTP/1.1 message as
 * the agent sees it (start line, headers, body), without the few headers undici adds and transport framing,
 * so the figure moves when the protocol's payloads do, not with the machine.
 */
export type WireCounts = { roundTrips: number; bytesSent: number; bytesReceived: number };

// ": " and CRLF around each header.
const headerBytes = (headers: Record<string, string | string[] | undefined>) => {
  let bytes = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === "string") bytes += name.length + value.length + 4;
    else for (const v of value) bytes += name.length + v.length + 4;
  }
  return bytes;
};

/** A response with its body read. */
export type ReadResponse = {
  status: number;
  statusText: string;
  headers: ResponseHeaders;
  body: Uint8Array;
  url: URL;
};

let shared: Dispatcher | undefined;

/**
 * One keep-alive connection pool for every agent that is not given its own: a swarm of thousands of agents
 * against one server opens as many connections as it has requests in flight, not one pool per agent.
 */
export function sharedDispatcher(): Dispatcher {
  shared ??= new UndiciAgent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
  return shared;
}

const PAYMENT_HEADERS = [HEADER_KEY.paymentSignature, HEADER_KEY.xPayment];

/** Turns a fetch-style init into something that can be sent more than once. */
export async function prepareRequest(init: RequestInit | undefined): Promise<PreparedRequest> {
  const headers: Record<string, string> = {};
  const source = init?.headers;
  if (source instanceof Headers) {
    source.forEach((value, name) => {
      headers[name] = value;
    });
  } else if (Array.isArray(source)) {
    for (const [name, value] of source) headers[String(name).toLowerCase()] = String(value);
  } else if (source) {
    for (const [name, value] of Object.entries(source)) headers[name.toLowerCase()] = String(value);
  }
  for (const name of PAYMENT_HEADERS) {
    // A caller's own payment plus the agent's would pay twice; `pay()` is the way to pay without a 402.
    if (name in headers) throw new TypeError(`the agent adds ${name} itself; do not set it`);
  }

  const raw = init?.body ?? undefined;
  let body: string | Uint8Array | undefined;
  let type: string | undefined;
  if (raw === undefined || typeof raw === "string") {
    body = raw;
    type = "text/plain;charset=UTF-8";
  } else if (raw instanceof URLSearchParams) {
    body = raw.toString();
    type = "application/x-www-form-urlencoded;charset=UTF-8";
  } else if (raw instanceof ArrayBuffer) {
    body = new Uint8Array(raw);
  } else if (ArrayBuffer.isView(raw)) {
    body = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  } else if (raw instanceof Blob) {
    body = new Uint8Array(await raw.arrayBuffer());
    type = raw.type || undefined;
  } else {
    throw new TypeError(
      "the agent sends a request up to twice, so its body must be bytes, a string or a Blob",
    );
  }
  if (body !== undefined && type && !("content-type" in headers)) headers["content-type"] = type;

  return {
    method: (init?.method ?? "GET").toUpperCase(),
    headers,
    body,
    signal: init?.signal ?? undefined,
    redirect: init?.redirect ?? "follow",
  };
}

/** How long the agent waits for a response's headers, and then as long again for its whole body. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Sends one request and reads its whole response within `timeoutMs` for the headers and `timeoutMs` more
 * for the body. undici's own timeouts measure silence, so a server trickling a byte at a time would hold
 * the agent (and the payment it sent) forever; these are deadlines. They fail with undici's timeout errors
 * (`UND_ERR_HEADERS_TIMEOUT`, `UND_ERR_BODY_TIMEOUT`).
 */
export async function send(
  dispatcher: Dispatcher,
  url: URL,
  request: PreparedRequest,
  headers: Record<string, string> = request.headers,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<ReadResponse> {
  const wire = request.wire;
  if (wire) {
    // "GET /path HTTP/1.1\r\n", "host: …\r\n", the headers, the blank line, the body.
    const body = request.body;
    wire.bytesSent +=
      request.method.length +
      url.pathname.length +
      url.search.length +
      12 +
      url.host.length +
      8 +
      headerBytes(headers) +
      2 +
      (body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  }
  const deadline = new AbortController();
  let timer = setTimeout(() => deadline.abort(new errors.HeadersTimeoutError()), timeoutMs);
  try {
    const response = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: request.method as Dispatcher.HttpMethod,
      headers,
      body: request.body,
      signal: request.signal ? AbortSignal.any([request.signal, deadline.signal]) : deadline.signal,
    });
    clearTimeout(timer);
    timer = setTimeout(() => response.body.destroy(new errors.BodyTimeoutError()), timeoutMs);
    const body = await response.body.bytes();
    if (wire) {
      wire.roundTrips += 1;
      // "HTTP/1.1 200 OK\r\n", the headers, the blank line, the body.
      wire.bytesReceived += 15 + response.statusText.length + headerBytes(response.headers) + 2 + body.length;
    }
    return {
      status: response.statusCode,
      statusText: response.statusText,
      headers: response.headers,
      body,
      url,
    };
  } finally {
    clearTimeout(timer);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// Dropped when a redirect turns the request into a GET, as fetch does.
const BODY_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
];
// Dropped when a redirect leaves the origin, as fetch does.
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * Where a redirect leads, and the request to send there; undefined when `response` is not a redirect the
 * request follows.
 */
export function redirectTarget(
  response: ReadResponse,
  request: PreparedRequest,
): { url: URL; request: PreparedRequest } | undefined {
  if (!REDIRECTS.has(response.status) || request.redirect === "manual") return undefined;
  const location = response.headers.location;
  if (typeof location !== "string") return undefined;
  if (request.redirect === "error") throw new TypeError(`redirected to ${location} with redirect: "error"`);
  const url = new URL(location, response.url);
  const headers = { ...request.headers };
  let { method, body } = request;
  if (
    (response.status === 303 && method !== "GET" && method !== "HEAD") ||
    ((response.status === 301 || response.status === 302) && method === "POST")
  ) {
    method = "GET";
    body = undefined;
    for (const name of BODY_HEADERS) delete headers[name];
  }
  if (url.origin !== response.url.origin) {
    for (const name of CREDENTIAL_HEADERS) delete headers[name];
  }
  return { url, request: { ...request, method, body, headers } };
}

/** The first value of a response header. */
export function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const SERVER_TIMING = /(?:^|,)\s*(verify|settle)\s*;[^,]*?\bdur=([0-9.]+)/g;

/** The `verify` and `settle` durations (ms) a server reports in `Server-Timing`. */
export function serverTimings(headers: ResponseHeaders): { verify?: number; settle?: number } {
  const raw = headers["server-timing"];
  if (raw === undefined) return {};
  const timings: { verify?: number; settle?: number } = {};
  for (const match of (Array.isArray(raw) ? raw.join(",") : raw).matchAll(SERVER_TIMING)) {
    const ms = Number(match[2]);
    if (Number.isFinite(ms)) timings[match[1] as "verify" | "settle"] = ms;
  }
  return timings;
}

// Statuses a WHATWG Response may not carry a body with.
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** The read response as a WHATWG Response, so the agent's fetch can stand in for the global one. */
export function toWhatwgResponse(response: ReadResponse): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  const body = NULL_BODY_STATUSES.has(response.status) || response.body.length === 0 ? null : response.body;
  const whatwg = new Response(body, { status: response.status, statusText: response.statusText, headers });
  // The constructor leaves `url` empty; callers resolve relative links against it.
  Object.defineProperty(whatwg, "url", { value: response.url.href });
  return whatwg;
}
