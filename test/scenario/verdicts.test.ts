import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { startDevnet } from "../../src/chain/index.ts";
import { startFaultProxy } from "../../src/faults/index.ts";
import {
  defineScenario,
  evaluateThresholds,
  loadScenario,
  parseThreshold,
  type RunReport,
  runScenario,
  ScenarioInputError,
  scenarioNames,
} from "../../src/scenario/index.ts";
import { type Stack, startStack } from "../../src/stack.ts";
import { smallScenario } from "../support/scenario.ts";

/** The user's deployment, already running: a broken route is put in front of its server. */
let users: Stack;

beforeAll(async () => {
  users = await startStack({ devnet: { accounts: 2 } });
});
afterAll(async () => {
  await users?.stop();
});

/**
 * A server that forwards its first `honest` requests to the real one (the 402s and the paid requests
 * that go with them), then answers every request with `broken` instead.
 */
async function breaksAfter(honest: number, broken: { status: number; body: string }): Promise<string> {
  let seen = 0;
  const server: Server = createServer(async (req, res) => {
    seen += 1;
    if (seen > honest) {
      res.writeHead(broken.status, { "content-type": "text/plain" }).end(broken.body);
      return;
    }
    const upstream = await request(`${users.server.url}${req.url}`, {
      method: req.method as "GET",
      headers: req.headers as Record<string, string>,
    });
    const headers = Object.fromEntries(
      Object.entries(upstream.headers).filter(([name]) => name !== "transfer-encoding"),
    );
    res.writeHead(upstream.statusCode, headers as Record<string, string>).end(await upstream.body.text());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  onTestFinished(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/weather`;
}

const againstBroken = async (broken: { status: number; body: string }) =>
  runScenario(await loadScenario("per-request"), {
    progress: false,
    agents: 1,
    durationMs: 800,
    // The probe, then the agent's 402 and its paid request: one payment goes through before the break.
    serverUrl: await breaksAfter(3, broken),
    rpcUrl: users.devnet.rpcUrl,
  });

/** The shipped scenarios' own thresholds, held against a run's measurements. */
async function defaultThresholdsHold(name: string, report: RunReport): Promise<boolean> {
  const scenario = await loadScenario(name);
  return evaluateThresholds((scenario.thresholds ?? []).map(parseThreshold), report).every((t) => t.ok);
}

describe("a run's verdict", () => {
  it("counts a paid route that starts answering 503 as errors, and fails", async () => {
    const report = await againstBroken({ status: 503, body: "down for maintenance" });
    expect(report.outcomes.paid).toBe(1);
    expect(report.outcomes.free ?? 0).toBe(0);
    expect(report.errors.http_503).toBeGreaterThan(5);
    expect(report.errors.http_503).toBe(report.outcomes.error);
    expect(report.ok).toBe(false);
    for (const name of await scenarioNames()) {
      // A scenario without load thresholds (cases only) is judged by its cases, which need our own stack.
      if ((await loadScenario(name)).thresholds === undefined) continue;
      expect({ name, held: await defaultThresholdsHold(name, report) }).toEqual({ name, held: false });
    }
  });

  it("counts a 404 as an error too", async () => {
    const report = await againstBroken({ status: 404, body: "no such route" });
    expect(report.errors.http_404).toBeGreaterThan(5);
    expect(report.ok).toBe(false);
  });

  it("flags a route that was paid for and then served free, and the default thresholds fail it", async () => {
    const report = await againstBroken({ status: 200, body: "free weather" });
    expect(report.outcomes.paid).toBe(1);
    expect(report.outcomes.free).toBeGreaterThan(5);
    expect(report.warnings).toEqual([
      expect.stringMatching(
        /^GET http:\/\/127\.0\.0\.1:\d+\/weather was paid for, then served \d+ times without asking for payment$/,
      ),
    ]);
    expect(report.ok).toBe(false);
    for (const name of await scenarioNames()) {
      if ((await loadScenario(name)).thresholds === undefined) continue;
      expect({ name, held: await defaultThresholdsHold(name, report) }).toEqual({ name, held: false });
    }
  });

  it("describes the run that actually ran, not the scenario's defaults", async () => {
    const report = await runScenario(smallScenario(4, 5_000), {
      progress: false,
      agents: 2,
      rate: 20,
      durationMs: 600,
      rpcUrl: users.devnet.rpcUrl,
    });
    expect(report.description).toBe("a few agents for a moment (2 agents; open model at 20/s for 0.6 s)");
    expect(report.warnings).toEqual([]);
    expect(report.interrupted).toBe(false);
    // Steady-state figures come with every report: this run is one short window, too short for drift.
    expect(report.steadyState.windows).toHaveLength(1);
    expect(report.steadyState.drift.throughput).toBeNull();
    expect(report.steadyState.memory.harness.startMb).toBeGreaterThan(0);
  });
});

describe("an interrupted run", () => {
  it("finishes what is in flight, checks it, and reports it as interrupted, never ok", async () => {
    const abort = new AbortController();
    const scenario = defineScenario({
      ...smallScenario(3, 60_000),
      // Stop once a few payments went through: the abort comes mid-run, with requests in flight.
      target: ({ iteration }) => {
        if (iteration === 5) abort.abort();
        return "/weather";
      },
    });
    const started = performance.now();
    const report = await runScenario(scenario, {
      progress: false,
      rpcUrl: users.devnet.rpcUrl,
      signal: abort.signal,
    });
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(report.interrupted).toBe(true);
    expect(report.ok).toBe(false);
    expect(report.outcomes.paid).toBeGreaterThanOrEqual(5);
    // The checks ran on what happened: every payment made is accounted for on chain.
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(report.invariants.length).toBeGreaterThan(0);
    expect(report.invariants.every((i) => i.ok)).toBe(true);
  });
});

describe("a post-run step that fails", () => {
  it("keeps what was measured and names the step", async () => {
    // A node that refuses eth_getLogs: only the post-run read of the settlements asks for logs.
    const devnet = await startDevnet({ accounts: 1 });
    const rpc = await startFaultProxy({
      target: devnet.rpcUrl,
      faults: {
        faults: [{ kind: "rpcError", match: { rpcMethod: "eth_getLogs" }, message: "logs are not served" }],
      },
    });
    onTestFinished(async () => {
      await rpc.stop();
      await devnet.stop();
    });
    const report = await runScenario(smallScenario(2, 600), { progress: false, rpcUrl: rpc.url });
    expect(report.outcomes.paid).toBeGreaterThan(0);
    expect(report.latency.e2e?.count).toBe(report.requests);
    expect(report.error).toEqual({
      step: "read settlements",
      message: expect.stringContaining("logs are not served"),
    });
    expect(report.ok).toBe(false);
  });

  it("is given up at its deadline when the chain stops answering, and the report still comes", async () => {
    const devnet = await startDevnet({ accounts: 1 });
    const rpc = await startFaultProxy({
      target: devnet.rpcUrl,
      faults: { faults: [{ kind: "hang", match: { rpcMethod: "eth_getLogs" } }] },
    });
    onTestFinished(async () => {
      await rpc.stop();
      await devnet.stop();
    });
    const began = performance.now();
    const report = await runScenario(smallScenario(2, 600), {
      progress: false,
      rpcUrl: rpc.url,
      stepDeadlineMs: 1_000,
    });
    expect(report.outcomes.paid).toBeGreaterThan(0);
    expect(report.error).toEqual({
      step: "read settlements",
      message: expect.stringContaining("no answer within 1 s"),
    });
    expect(report.ok).toBe(false);
    // The hung read would otherwise have waited out viem's 10 s request timeout, page after page.
    expect(performance.now() - began).toBeLessThan(10_000);
  });
});

describe("input a scenario or run cannot take", () => {
  it.each([
    [{ agents: 0 }, "agents must be a positive integer, got 0"],
    [{ agents: -3 }, "agents must be a positive integer, got -3"],
    [{ durationMs: -1 }, "durationMs must be a positive number, got -1"],
  ])("refuses the overrides %j before anything starts", async (overrides, message) => {
    await expect(runScenario(smallScenario(2, 500), overrides)).rejects.toThrow(
      new ScenarioInputError(message),
    );
  });

  it("refuses --agents on a scenario whose cases fix the count, and notes options a scenario ignores", async () => {
    const failures = await loadScenario("failures");
    await expect(runScenario(failures, { agents: 3 })).rejects.toThrow(
      /scenario failures needs exactly \d+ agents .*--agents 3 cannot be honoured/,
    );
    // Its reorgs would be faked on a fork: refused, whether the profile or --fork-url makes one.
    await expect(runScenario(failures, { devnet: { profile: "flashblocks" } })).rejects.toThrow(
      /scenario failures injects reorgs, .*--profile flashblocks runs as a fork .*: run it on --profile instant/,
    );
    await expect(runScenario(failures, { forkUrl: "http://127.0.0.1:1" })).rejects.toThrow(
      /--fork-url runs it on a fork/,
    );
  });

  it("checks a scenario's shape at run time, for plain JavaScript", () => {
    const shapeless = {
      name: "js",
      description: "from plain JavaScript",
      load: { kind: "closed", durationMs: 1 },
    };
    expect(() => defineScenario(shapeless as never)).toThrow("scenario js needs agents: { count: N }");
    expect(() => defineScenario({ ...shapeless, agents: { count: 0 } } as never)).toThrow(
      "scenario js: agents.count must be a positive integer, got 0",
    );
    expect(() =>
      defineScenario({
        ...shapeless,
        agents: { count: 1 },
        load: { kind: "closed", durationMs: -5 },
      } as never),
    ).toThrow("scenario js: load.durationMs must be a positive number, got -5");
  });
});
