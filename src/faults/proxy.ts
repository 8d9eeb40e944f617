import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { setTimeout as delay, setImmediate as nextTurn } from "node:timers/promises";
import { type Dispatcher, Pool } from "undici";
import { seededRandom } from "../load/index.ts";
import { type JsonRpcBody, jsonRpcErrorBody, parseJsonRpc } from "./jsonrpc.ts";
import {
  decide,
  FAULT_KINDS,
  type FaultKind,
  type FaultPlan,
  type RequestView,
  type TerminalFault,
  validatePlan,
} from "./plan.ts";

export type FaultProxyOptions = {
  /** The service behind the proxy, e.g. `http://127.0.0.1:8545`; a path in it is prefixed to every request. */
  target: string;
  faults?: FaultPlan;
  /** Seed of the RNG behind fault probabilities (default 1). */
  seed?: number;
  /** Port on 127.0.0.1 to listen on; a free one when absent. */
  port?: number;
  /** Called for each fault applied, e.g. to log it in a scenario report. */
  onFault?: (event: FaultEvent) => void;
};

export type FaultEvent = {
  kind: FaultKind;
  method: string;
  path: string;
  /** The JSON-RPC methods of the request, when it is JSON-RPC and a fault looked at them. */
  rpcMethods?: readonly string[];
  afterForward: boolean;
};

export type FaultProxyStats = {
  /** Requests that reached the proxy (those refused while `down` never do). */
  seen: number;
  /** Requests handed to the target, including those whose answer a fault then replaced. */
  forwarded: number;
  /** Faults applied, by kind; one request can carry latency and one other fault. */
  faulted: Record<FaultKind, number>;
  /** Faulted answers whose request had already been handled by the target (`afterForward`). */
  afterForward: number;
  /** Requests the target did not answer (unreachable, reset): the client got 502. */
  upstreamErrors: number;
};

export type FaultProxy = {
  url: string;
  /** Switches plans at runtime; resolves once a `down` change is in effect (socket closed or listening). */
  setFaults(plan: FaultPlan): Promise<void>;
  stats(): FaultProxyStats;
  /** Closes the proxy and every connection to it, in flight or held; later `setFaults` calls reject. */
  stop(): Promise<void>;
};

// Per-connection headers (RFC 9110 §7.6.1) belong to each hop, not to the request; content-length is
// recomputed from the buffered body, and undici refuses `expect`.
const HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "content-length",
  "expect",
]);

function endToEndHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>) {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_HEADERS.has(name.toLowerCase())) kept[name] = value;
  return kept;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * An HTTP proxy that forwards to `target` over a keep-alive pool and injects the faults of its current
 * plan: latency, error statuses, resets, hangs, answers lost after the target acted, JSON-RPC errors, and
 * being down altogether (connection refused on the same port).
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== "http:" && target.protocol !== "https:")
    throw new TypeError(`The proxy target must be an http(s) URL, got ${options.target}.`);
  const basePath = target.pathname.replace(/\/$/, "");
  let plan: FaultPlan = options.faults ?? {};
  validatePlan(plan);

  const random = seededRandom(options.seed ?? 1);
  const pool = new Pool(target.origin);
  const closing = new AbortController();
  const counters: FaultProxyStats = {
    seen: 0,
    forwarded: 0,
    faulted: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    afterForward: 0,
    upstreamErrors: 0,
  };
  const held = new Set<(release: boolean) => void>();
  const inFlight = new Set<Promise<void>>();

  const forward = (request: IncomingMessage, body: Buffer) => {
    counters.forwarded += 1;
    const url = request.url ?? "/";
    return pool.request({
      method: (request.method ?? "GET") as Dispatcher.HttpMethod,
      path: basePath && url === "/" ? basePath : basePath + url,
      headers: endToEndHeaders(request.headers),
      body: body.length > 0 ? body : undefined,
      signal: closing.signal,
    });
  };

  const relay = async (request: IncomingMessage, response: ServerResponse, body: Buffer) => {
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await forward(request, body);
    } catch {
      if (closing.signal.aborted) return;
      counters.upstreamErrors += 1;
      response.writeHead(502, { "content-type": "application/json", "x-fault": "upstream" });
      response.end(JSON.stringify({ error: "Bad Gateway: the proxy target did not answer." }));
      return;
    }
    response.writeHead(upstream.statusCode, endToEndHeaders(upstream.headers));
    // A client that leaves mid-answer ends the pipeline with an error that is nobody's business here.
    await pipeline(upstream.body, response).catch(() => undefined);
  };

  /** Lets the target act on the request and waits for its whole answer, which the caller then loses. */
  const forwardAndDiscard = async (request: IncomingMessage, body: Buffer) => {
    try {
      const upstream = await forward(request, body);
      await upstream.body.dump();
    } catch {
      counters.upstreamErrors += 1;
    }
    counters.afterForward += 1;
  };

  const answerStatus = (response: ServerResponse, status: number, body: string | undefined) => {
    const text = body ?? JSON.stringify({ error: `fault injected: ${status}` });
    response.writeHead(status, { "content-type": "application/json", "x-fault": "status" });
    response.end(text);
  };

  const hold = (response: ServerResponse) =>
    new Promise<boolean>((resolve) => {
      const settle = (release: boolean) => {
        held.delete(settle);
        resolve(release);
      };
      held.add(settle);
      response.once("close", () => settle(false));
    });

  const apply = async (
    outcome: TerminalFault,
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer,
    view: RequestView,
  ) => {
    switch (outcome.kind) {
      case "status":
        if (outcome.afterForward) await forwardAndDiscard(request, body);
        if (!request.socket.destroyed) answerStatus(response, outcome.status, outcome.body);
        return;
      case "drop":
        if (outcome.afterForward) await forwardAndDiscard(request, body);
        // A TCP reset rather than a FIN, so the client sees ECONNRESET, as when a process dies mid-request.
        if (!request.socket.destroyed) request.socket.resetAndDestroy();
        return;
      case "hang":
        // A `down` in the new plan may have reset the held connection before the release reached it.
        if ((await hold(response)) && !request.socket.destroyed) await relay(request, response, body);
        return;
      case "rpcError":
        response.writeHead(200, { "content-type": "application/json", "x-fault": "rpcError" });
        response.end(
          jsonRpcErrorBody(view.rpc(), outcome.code ?? -32000, outcome.message ?? "fault injected: rpcError"),
        );
        return;
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    counters.seen += 1;
    const body = await readBody(request);
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    const method = request.method ?? "GET";
    let parsed = false;
    let rpc: JsonRpcBody | undefined;
    const readRpc = () => {
      if (!parsed) {
        parsed = true;
        rpc = parseJsonRpc(body);
      }
      return rpc;
    };
    const view: RequestView = { method, path, rpc: readRpc };
    const { delayMs, latencyFaults, outcome } = decide(plan, view, random);

    const report = (kind: FaultKind, afterForward = false) => {
      const rpcMethods = rpc ? rpc.calls.map((call) => call.method) : undefined;
      options.onFault?.({ kind, method, path, afterForward, ...(rpcMethods ? { rpcMethods } : {}) });
    };
    if (latencyFaults > 0) {
      counters.faulted.latency += latencyFaults;
      report("latency");
      await delay(delayMs, undefined, { signal: closing.signal });
    }
    // A client that gave up, or a `down` that reset it, leaves nothing to answer.
    if (request.socket.destroyed) return;
    if (!outcome) return relay(request, response, body);
    counters.faulted[outcome.kind] += 1;
    report(outcome.kind, "afterForward" in outcome && outcome.afterForward === true);
    await apply(outcome, request, response, body, view);
  };

  const server = createServer((request, response) => {
    const work = handle(request, response)
      .catch(() => {
        // Only stopping (an aborted delay or forward) or a vanished client lands here; both end the request.
        if (!response.headersSent && !response.destroyed) request.socket.destroy();
      })
      .finally(() => inFlight.delete(work));
    inFlight.add(work);
  });

  const listen = async (port: number) => {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
  };
  const close = async () => {
    const closed = once(server, "close");
    server.close();
    server.closeAllConnections();
    await closed;
  };

  try {
    await listen(options.port ?? 0);
  } catch (error) {
    await pool.destroy();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  if (plan.down) await close();

  let changes = Promise.resolve();
  const change = async (next: FaultPlan) => {
    // Without this, a late plan change (a chaos schedule outliving the proxy) would listen again.
    if (closing.signal.aborted) throw new Error("The fault proxy is stopped.");
    plan = next;
    if (next.down && server.listening) await close();
    if (!next.down && !server.listening) await listen(port);
    for (const settle of [...held]) settle(true);
  };

  return {
    url: `http://127.0.0.1:${port}`,
    async setFaults(next) {
      validatePlan(next);
      // Changes apply in call order, so a closing socket never races the listen of the next plan.
      const applied = changes.then(() => change(next));
      changes = applied.catch(() => undefined);
      return applied;
    },
    stats: () => ({ ...counters, faulted: { ...counters.faulted } }),
    async stop() {
      if (closing.signal.aborted) return;
      closing.abort();
      for (const settle of [...held]) settle(false);
      await changes;
      if (server.listening) await close();
      await Promise.all(inFlight);
      await pool.destroy();
    },
  };
}

/**
 * Injects `plan` for the first request it faults only: the plan is lifted as soon as the proxy has counted
 * that fault, which it does before it forwards the request, so the retry that follows passes untouched.
 * `stop()` gives up waiting (the case ended without the request it expected).
 */
export async function faultOnce(
  proxy: FaultProxy,
  plan: FaultPlan,
  kind: FaultKind,
): Promise<{ lifted: Promise<void>; stop(): void }> {
  const start = proxy.stats().faulted[kind];
  let stopped = false;
  await proxy.setFaults(plan);
  const lifted = (async () => {
    while (!stopped && proxy.stats().faulted[kind] === start) await nextTurn();
    await proxy.setFaults({});
  })();
  return {
    lifted,
    stop: () => {
      stopped = true;
    },
  };
}
