import { once } from "node:events";
import { connect, createServer } from "node:net";
import type { Agent } from "undici";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FaultPlan, type FaultProxy, startFaultProxy } from "../../src/faults/index.ts";
import { faultEvents, newAgent, send, startTarget } from "./harness.ts";

let target: Awaited<ReturnType<typeof startTarget>>;
let agent: Agent;
beforeAll(async () => {
  target = await startTarget();
  agent = newAgent();
});
afterAll(async () => {
  await agent.close();
  await target.stop();
});

describe("startFaultProxy", () => {
  let proxy: FaultProxy;
  const events = faultEvents();
  beforeEach(async () => {
    target.hits.length = 0;
    proxy = await startFaultProxy({ target: target.url, onFault: events.onFault });
  });
  afterEach(() => proxy.stop());

  const through = (path: string, options: Parameters<typeof send>[1] = {}) =>
    send(proxy.url + path, { dispatcher: agent, ...options });

  it("forwards method, path, query, headers and body, and relays status, headers and body", async () => {
    const answer = await through("/created/item?x=1", {
      method: "PUT",
      headers: { "content-type": "text/plain", "x-payment": "abc" },
      body: "hello",
    });
    expect(answer.status).toBe(201);
    expect(answer.headers?.["x-target"]).toBe("echo");
    const echoed = JSON.parse(answer.text ?? "");
    expect(echoed).toMatchObject({ method: "PUT", url: "/created/item?x=1", body: "hello" });
    expect(echoed.headers).toMatchObject({ "x-payment": "abc", "content-type": "text/plain" });
    expect(proxy.stats()).toMatchObject({ seen: 1, forwarded: 1, afterForward: 0, upstreamErrors: 0 });
    expect(Object.values(proxy.stats().faulted).every((count) => count === 0)).toBe(true);
  });

  it("delays by a fixed latency, or one drawn from a range, before forwarding", async () => {
    await proxy.setFaults({ faults: [{ kind: "latency", ms: 150 }] });
    let started = performance.now();
    expect((await through("/a")).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);

    await proxy.setFaults({ faults: [{ kind: "latency", ms: [80, 120] }] });
    started = performance.now();
    expect((await through("/b")).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(80);
    expect(target.hits.map((hit) => hit.url)).toEqual(["/a", "/b"]);
    expect(proxy.stats()).toMatchObject({ forwarded: 2, faulted: { latency: 2 } });
  });

  it("answers an error status without forwarding", async () => {
    await proxy.setFaults({
      faults: [
        { kind: "status", status: 429, body: '{"error":"slow down"}', match: { path: "/verify" } },
        { kind: "status", status: 503 },
      ],
    });
    const limited = await through("/verify", { method: "POST", body: "{}" });
    expect(limited).toMatchObject({ status: 429, text: '{"error":"slow down"}' });
    expect(limited.headers?.["x-fault"]).toBe("status");
    expect((await through("/settle", { method: "POST", body: "{}" })).status).toBe(503);
    expect(target.hits).toEqual([]);
    expect(proxy.stats()).toMatchObject({ seen: 2, forwarded: 0, faulted: { status: 2 } });
  });

  it("drops a request: the client's connection is reset and the target never sees it", async () => {
    await proxy.setFaults({ faults: [{ kind: "drop" }] });
    expect(await through("/settle", { method: "POST", body: "{}" })).toEqual({ error: "ECONNRESET" });
    expect(target.hits).toEqual([]);
    expect(proxy.stats().faulted.drop).toBe(1);
  });

  it("hangs a request until the client's own timeout ends it", async () => {
    await proxy.setFaults({ faults: [{ kind: "hang" }] });
    const started = performance.now();
    expect(await through("/settle", { timeoutMs: 200 })).toEqual({ error: "UND_ERR_HEADERS_TIMEOUT" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(target.hits).toEqual([]);
  });

  it("releases hung requests to the target when the plan changes", async () => {
    await proxy.setFaults({ faults: [{ kind: "hang" }] });
    const hung = events.next();
    const answer = through("/late");
    expect((await hung).kind).toBe("hang");
    expect(target.hits).toEqual([]);
    await proxy.setFaults({});
    expect((await answer).status).toBe(200);
    expect(target.hits.map((hit) => hit.url)).toEqual(["/late"]);
    expect(proxy.stats()).toMatchObject({ faulted: { hang: 1 }, forwarded: 1 });
  });

  it("afterForward status: the target handles the request, the client gets the error instead", async () => {
    await proxy.setFaults({ faults: [{ kind: "status", status: 502, afterForward: true }] });
    const answer = await through("/settle", { method: "POST", body: '{"payment":1}' });
    expect(answer.status).toBe(502);
    expect(target.hits).toMatchObject([{ method: "POST", url: "/settle", body: '{"payment":1}' }]);
    expect(proxy.stats()).toMatchObject({ forwarded: 1, afterForward: 1, faulted: { status: 1 } });
  });

  it("afterForward drop: the target handles the request, the client's connection is reset", async () => {
    await proxy.setFaults({ faults: [{ kind: "drop", afterForward: true }] });
    expect(await through("/settle", { method: "POST", body: "{}" })).toEqual({ error: "ECONNRESET" });
    expect(target.hits.map((hit) => hit.url)).toEqual(["/settle"]);
    expect(proxy.stats()).toMatchObject({ forwarded: 1, afterForward: 1, faulted: { drop: 1 } });
  });

  it("down: refuses connections on the same port, resets open ones, and serves again after setFaults({})", async () => {
    const port = Number(new URL(proxy.url).port);
    expect((await through("/before")).status).toBe(200);
    const open = connect(port, "127.0.0.1");
    await once(open, "connect");
    const openClosed = once(open, "close");

    await proxy.setFaults({ down: true });
    await openClosed;
    const refused = connect(port, "127.0.0.1");
    const [error] = (await once(refused, "error")) as [NodeJS.ErrnoException];
    expect(error.code).toBe("ECONNREFUSED");
    const fresh = newAgent();
    try {
      expect(await send(`${proxy.url}/during`, { dispatcher: fresh })).toEqual({ error: "ECONNREFUSED" });
    } finally {
      await fresh.close();
    }

    await proxy.setFaults({});
    expect((await through("/after")).status).toBe(200);
    expect(target.hits.map((hit) => hit.url)).toEqual(["/before", "/after"]);
  });

  it("faults only the requests its filter matches (HTTP method and path)", async () => {
    await proxy.setFaults({
      faults: [{ kind: "status", status: 500, match: { method: "post", path: "/settle*" } }],
    });
    expect((await through("/settle/v2", { method: "POST", body: "{}" })).status).toBe(500);
    expect((await through("/settle", { method: "GET" })).status).toBe(200);
    expect((await through("/verify", { method: "POST", body: "{}" })).status).toBe(200);
    await proxy.setFaults({ faults: [{ kind: "status", status: 500, match: { path: /^\/v\d+\/settle$/ } }] });
    expect((await through("/v2/settle?retry=1", { method: "POST", body: "{}" })).status).toBe(500);
    expect((await through("/v2/settle/x", { method: "POST", body: "{}" })).status).toBe(200);
    expect(target.hits.map((hit) => hit.url)).toEqual(["/settle", "/verify", "/v2/settle/x"]);
  });

  it("answers 502 and counts an upstream error when the target does not answer", async () => {
    const closed = await unusedPort();
    const orphan = await startFaultProxy({ target: `http://127.0.0.1:${closed}` });
    try {
      const answer = await send(`${orphan.url}/x`, { dispatcher: agent });
      expect(answer.status).toBe(502);
      expect(answer.headers?.["x-fault"]).toBe("upstream");
      expect(orphan.stats()).toMatchObject({ seen: 1, forwarded: 1, upstreamErrors: 1 });
    } finally {
      await orphan.stop();
    }
  });

  it("rejects plans that cannot work, before they are in force", async () => {
    const bad: FaultPlan[] = [
      { faults: [{ kind: "status", status: 200 }] },
      { faults: [{ kind: "drop", probability: 1.5 }] },
      { faults: [{ kind: "latency", ms: [50, 10] }] },
      { faults: [{ kind: "latency", ms: -1 }] },
    ];
    for (const plan of bad) await expect(proxy.setFaults(plan)).rejects.toThrow(RangeError);
    await expect(startFaultProxy({ target: target.url, faults: bad[0] })).rejects.toThrow(RangeError);
    expect((await through("/still-fine")).status).toBe(200);
  });
});

describe("seeded probability", () => {
  const plan: FaultPlan = { faults: [{ kind: "status", status: 503, probability: 0.5 }] };
  const sequence = async (seed: number) => {
    const proxy = await startFaultProxy({ target: target.url, faults: plan, seed });
    try {
      const statuses: (number | undefined)[] = [];
      for (let i = 0; i < 24; i++)
        statuses.push((await send(`${proxy.url}/p`, { dispatcher: agent })).status);
      return { statuses, stats: proxy.stats() };
    } finally {
      await proxy.stop();
    }
  };

  it("replays the same faults for the same seed, and others for another seed", async () => {
    const first = await sequence(42);
    const again = await sequence(42);
    const other = await sequence(7);
    expect(again.statuses).toEqual(first.statuses);
    expect(other.statuses).not.toEqual(first.statuses);
    expect(new Set(first.statuses)).toEqual(new Set([200, 503]));
    expect(first.stats.faulted.status + first.stats.forwarded).toBe(24);
  });
});

describe("stop", () => {
  it("closes a hung request's connection, leaves nothing listening, and refuses later plan changes", async () => {
    const events = faultEvents();
    const proxy = await startFaultProxy({
      target: target.url,
      faults: { faults: [{ kind: "hang" }] },
      onFault: events.onFault,
    });
    const hung = events.next();
    const answer = send(`${proxy.url}/stuck`, { dispatcher: agent });
    await hung;
    await proxy.stop();
    // Stopping closes the connection (FIN), which undici reports as "other side closed".
    expect(await answer).toEqual({ error: "UND_ERR_SOCKET" });
    await expect(proxy.setFaults({})).rejects.toThrow(/stopped/);
    const refused = connect(Number(new URL(proxy.url).port), "127.0.0.1");
    expect(((await once(refused, "error")) as [NodeJS.ErrnoException])[0].code).toBe("ECONNREFUSED");
  });
});

/** A port nothing listens on: bound by us, then released. */
async function unusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
