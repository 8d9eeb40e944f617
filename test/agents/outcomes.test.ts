import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentResult, createAgent } from "../../src/agents/index.ts";
import { RunMetrics } from "../../src/load/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import {
  type CountingServer,
  type PaymentStack,
  type Stub,
  startPaymentStack,
  startStub,
} from "./harness.ts";

const PRICE = 1000n;

type Fault = "none" | "503" | "404" | "reset" | "hang" | "trickle";

let stack: PaymentStack;
let server: CountingServer;
/** Our server behind a proxy that injects `fault` into every request while it is set. */
let proxy: Stub;
let fault: Fault = "none";

/** Answers with `fault`; false when there is none and the request should be served. */
function inject(request: IncomingMessage, response: ServerResponse): boolean {
  switch (fault) {
    case "none":
      return false;
    case "503":
    case "404":
      response.writeHead(Number(fault), { "content-type": "text/plain" }).end("unavailable");
      return true;
    case "reset":
      request.socket.resetAndDestroy();
      return true;
    case "hang":
      // Never answers; the stub's stop() closes the connection.
      return true;
    case "trickle": {
      response.writeHead(200, { "content-type": "text/plain" });
      const drip = setInterval(() => response.write("."), 20);
      response.on("close", () => clearInterval(drip));
      return true;
    }
  }
}

beforeAll(async () => {
  stack = await startPaymentStack();
  proxy = await startStub(async (request, response) => {
    if (inject(request, response)) return;
    const headers: Record<string, string> = {};
    for (const name of ["payment-signature", "sign-in-with-x"]) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const upstream = await fetch(`${server.url}${request.url}`, { headers });
    const out: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "connection" && name !== "keep-alive") out[name] = value;
    });
    response.writeHead(upstream.status, out);
    response.end(Buffer.from(await upstream.arrayBuffer()));
  });
  server = await stack.serve({
    routes: { "GET /weather": { price: PRICE, payTo: stack.payee.address, sessions: true } },
    // The proxy is the origin the agents see, so their proofs name it.
    sessions: { origin: proxy.url },
  });
});
afterAll(async () => {
  await proxy?.stop();
  await stack?.stop();
});

const account = (index: number) => devnetAccount(stack.devnet, index);

async function withFault<T>(next: Fault, act: () => Promise<T>): Promise<T> {
  fault = next;
  try {
    return await act();
  } finally {
    fault = "none";
  }
}

const summary = (r: AgentResult) => [r.status, r.outcome, r.errorCode];

describe("outcomes: only a served request is free", () => {
  it("a paid route that starts failing mid-run is an error with the cause, and the run's metrics count it", async () => {
    // Sessions off: every request to the route starts unpaid, as a load run's agents do.
    const agent = createAgent({ privateKey: account(0).privateKey, sessions: false });
    const url = `${proxy.url}/weather`;
    const results = [
      await agent.request(url),
      await withFault("503", () => agent.request(url)),
      await withFault("404", () => agent.request(url)),
      await withFault("reset", () => agent.request(url)),
      await agent.request(url),
    ];
    expect(results.map(summary)).toEqual([
      [200, "paid", undefined],
      [503, "error", "http_503"],
      [404, "error", "http_404"],
      [0, "error", "ECONNRESET"],
      [200, "paid", undefined],
    ]);
    // Nothing was signed for the failed requests.
    expect(results.slice(1, 4).map((r) => r.amount)).toEqual([undefined, undefined, undefined]);
    expect([agent.spent, agent.reserved]).toEqual([2n * PRICE, 0n]);

    const metrics = new RunMetrics();
    for (const result of results) metrics.record(result);
    expect(metrics.outcomes).toEqual({ paid: 2, error: 3 });
    expect(metrics.errors).toEqual({ http_503: 1, http_404: 1, ECONNRESET: 1 });
  });

  it("2xx and 3xx that ask for no payment are free; 4xx and 5xx are not", async () => {
    const statuses = await startStub((request, response) => {
      const status = Number(request.url?.slice(1));
      response.writeHead(status, status === 302 ? { location: "/200" } : {}).end();
    });
    try {
      const agent = createAgent({ privateKey: account(0).privateKey });
      const outcomes: unknown[] = [];
      for (const status of [200, 204, 304, 400, 403, 500, 502]) {
        outcomes.push(summary(await agent.request(`${statuses.url}/${status}`)));
      }
      outcomes.push(summary(await agent.request(`${statuses.url}/302`, { redirect: "manual" })));
      expect(outcomes).toEqual([
        [200, "free", undefined],
        [204, "free", undefined],
        [304, "free", undefined],
        [400, "error", "http_400"],
        [403, "error", "http_403"],
        [500, "error", "http_500"],
        [502, "error", "http_502"],
        [302, "free", undefined],
      ]);
    } finally {
      await statuses.stop();
    }
  });

  it("a session answered with a 5xx is an error, not a session", async () => {
    const agent = createAgent({ privateKey: account(1).privateKey });
    const url = `${proxy.url}/weather`;
    const results = [
      await agent.request(url),
      await agent.request(url),
      await withFault("503", () => agent.request(url)),
      await agent.request(url),
    ];
    expect(results.map(summary)).toEqual([
      [200, "paid", undefined],
      [200, "session", undefined],
      [503, "error", "http_503"],
      // The failed proof was never served, so the next one signs a fresh challenge after a 402.
      [200, "session", undefined],
    ]);
    expect(agent.spent).toBe(PRICE);
  });
});

describe("timeouts: a hung server cannot hold the agent", () => {
  it("no headers within timeoutMs: error UND_ERR_HEADERS_TIMEOUT", async () => {
    const agent = createAgent({ privateKey: account(2).privateKey, timeoutMs: 200 });
    const result = await withFault("hang", () => agent.request(`${proxy.url}/weather`));
    expect(summary(result)).toEqual([0, "error", "UND_ERR_HEADERS_TIMEOUT"]);
    expect(result.timings.e2e).toBeLessThan(5_000);
  });

  it("a body trickled a byte at a time past the deadline: error UND_ERR_BODY_TIMEOUT", async () => {
    // Each byte arrives well within undici's idle timeout; only a deadline ends this.
    const agent = createAgent({ privateKey: account(2).privateKey, timeoutMs: 200 });
    const result = await withFault("trickle", () => agent.request(`${proxy.url}/weather`));
    expect(summary(result)).toEqual([0, "error", "UND_ERR_BODY_TIMEOUT"]);
    expect(result.timings.e2e).toBeLessThan(5_000);
  });
});
