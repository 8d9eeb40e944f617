import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { DEFAULT_MNEMONIC, deriveAccounts } from "../../src/chain/index.ts";
import { writeCloudRun } from "../../src/scenario/artillery/cloud.ts";
import { FILES, readArtilleryJob } from "../../src/scenario/artillery/engine.ts";
import { ensureArtillery } from "../../src/scenario/artillery/install.ts";
import { ARTILLERY_HD, FUNDER_KEY_ENV } from "../../src/scenario/artillery/job.ts";
import { launchArtillery } from "../../src/scenario/artillery/launch.ts";
import { slotTallies } from "../../src/scenario/artillery/verify.ts";
import {
  artilleryEngine,
  defineScenario,
  loadScenario,
  parseThreshold,
  type RunReport,
  runScenario,
  ScenarioInputError,
} from "../../src/scenario/index.ts";
import { type Stack, startStack } from "../../src/stack.ts";
import { x402Cli } from "../support/scenario.ts";
import { startUnsettlingServer } from "../support/unsettling-server.ts";

/** Six agents paying 15 times each, as fast as they can: a schedule both engines run to the same count. */
const fixedSchedule = defineScenario({
  name: "fixed-schedule",
  description: "six agents pay GET /weather fifteen times each",
  agents: { count: 6 },
  target: "/weather",
  load: { kind: "closed", durationMs: 60_000, iterations: 15 },
  thresholds: ["errors.rate == 0", "outcomes.paid == 90", "e2e.p99 < 5s"],
});

let bin: string;

beforeAll(async () => {
  // Installs Artillery on first use (a minute, offline-safe with the npm cache); `.ci/run` does it up front.
  bin = await ensureArtillery((line) => process.stderr.write(`${line}\n`));
}, 600_000);

const failed = (report: RunReport) =>
  report.invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}`);
const slotsOf = (report: RunReport) =>
  report.invariants.find((i) => i.name === "every worker set up its wallets and paid from wallets of its own")
    ?.detail;

describe("a scenario on Artillery, two worker threads, against the devnet stack", () => {
  let artillery: RunReport;
  let inProcess: RunReport;

  beforeAll(async () => {
    artillery = await runScenario(fixedSchedule, {
      progress: false,
      engine: artilleryEngine({ workers: 2 }),
    });
    inProcess = await runScenario(fixedSchedule, { progress: false });
  }, 240_000);

  it("pays through both workers, and the paid count Artillery merged equals the settlements on chain", () => {
    expect(failed(artillery)).toEqual([]);
    expect(artillery.ok).toBe(true);
    expect(artillery.config.engine).toBe("artillery");
    expect(artillery.config.workers).toBe(2);
    // Each worker drew a slot of its own and funded its share of the agents (3 each).
    expect(slotsOf(artillery)).toBe("2 worker slots, 6 wallets");
    expect(artillery.outcomes.paid).toBe(90);
    expect(artillery.chain.settlements).toBe(90);
    expect(artillery.thresholds.every((t) => t.ok)).toBe(true);
  });

  it("merges the workers' metrics into the figures a single-process run of the same schedule gives", () => {
    expect(inProcess.ok).toBe(true);
    // Counters add across workers: every request and outcome, exactly.
    expect(artillery.requests).toBe(inProcess.requests);
    expect(artillery.outcomes).toEqual(inProcess.outcomes);
    expect(artillery.errors).toEqual(inProcess.errors);
    // Histograms merge as sketches: each phase holds every worker's samples, one per paid request.
    for (const phase of ["challenge", "sign", "paid", "verify", "settle", "e2e"] as const) {
      expect(artillery.latency[phase]?.count, phase).toBe(inProcess.latency[phase]?.count);
    }
    expect(artillery.latencyByPath?.["exact/eip3009"]?.count).toBe(90);
    const e2e = artillery.latency.e2e;
    const reference = inProcess.latency.e2e;
    if (!e2e || !reference) throw new Error("no e2e latency");
    expect(e2e.p50).toBeLessThanOrEqual(e2e.p99);
    expect(e2e.p99).toBeLessThanOrEqual(e2e.max);
    // The same work on the same machine: the merged median is the single-process one within a small factor.
    expect(e2e.p50).toBeGreaterThan(reference.p50 / 4);
    expect(e2e.p50).toBeLessThan(reference.p50 * 4);
    // The report has the same shape: the summary, the HTML and the baseline read it unchanged.
    expect(Object.keys(artillery).sort()).toEqual(
      expect.arrayContaining([
        "latency",
        "throughput",
        "steadyState",
        "chain",
        "invariants",
        "thresholds",
        "cost",
      ]),
    );
    expect(artillery.throughput.timeline.length).toBeGreaterThan(0);
  });
});

describe("an Artillery run's verdict", () => {
  let users: Stack;
  beforeAll(async () => {
    users = await startStack({ devnet: { accounts: 1 } });
  });
  afterAll(async () => {
    await users?.stop();
  });

  it("fails a server that answers paid requests without settling them", async () => {
    const url = await startUnsettlingServer(users.server.url);

    const report = await runScenario(
      defineScenario({ ...fixedSchedule, load: { kind: "closed", durationMs: 10_000, iterations: 3 } }),
      {
        progress: false,
        serverUrl: `${url}/weather`,
        rpcUrl: users.devnet.rpcUrl,
        engine: artilleryEngine({ workers: 2 }),
      },
    );
    expect(report.outcomes.paid).toBe(18);
    expect(report.chain.settlements).toBe(0);
    expect(failed(report).map((f) => f.split(":")[0])).toEqual(
      expect.arrayContaining([
        "money in equals money out",
        "each payer was charged exactly what its paid responses claim",
        "every paid response matches exactly one settlement",
      ]),
    );
    expect(report.ok).toBe(false);
  }, 120_000);

  it("runs the files written for the cloud, and judges the report they give on chain", async () => {
    const dir = await mkdtemp(join(tmpdir(), "x402-cloud-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const scenario = defineScenario({
      ...fixedSchedule,
      load: { kind: "closed", durationMs: 10_000, iterations: 4 },
      thresholds: ["errors.rate == 0", "outcomes.paid == 12"],
    });
    const written = await writeCloudRun({
      scenario,
      plan: {
        agentCount: 3,
        seed: 1,
        model: scenario.load,
        thresholds: (scenario.thresholds ?? []).map(parseThreshold),
        ignored: [],
      },
      serverUrl: `${users.server.url}/weather`,
      rpcUrl: users.devnet.rpcUrl,
      dir,
    });
    expect(written.commands.join("\n")).toContain("run-fargate");
    const job = await readArtilleryJob(join(dir, FILES.script));
    expect(job.walletsPerWorker).toBe(3);
    expect(job.server).toEqual({ url: `${users.server.url}/weather`, fixed: true });

    // What a cloud worker does, here: the user's funder key (a devnet account) funds each thread's wallets.
    const [funder] = deriveAccounts(DEFAULT_MNEMONIC, 1, ARTILLERY_HD.funder - 1);
    if (!funder) throw new Error("no funder");
    await users.devnet.fund([funder.address], { usdc: 10n ** 12n });
    const report = join(dir, FILES.report);
    const run = await launchArtillery({
      bin,
      script: join(dir, FILES.script),
      report,
      workDir: dir,
      workers: 2,
      env: { [FUNDER_KEY_ENV]: funder.privateKey },
    });
    expect(run.code, run.tail.join("\n")).toBe(0);
    const counters = (
      JSON.parse(await readFile(report, "utf8")) as { aggregate: { counters: Record<string, number> } }
    ).aggregate.counters;
    // Two threads, each with wallets for all three agents (a cloud thread cannot know its share).
    expect([...slotTallies(counters).values()].map((s) => s.wallets)).toEqual([3, 3]);

    const cli = await x402Cli("artillery", [
      "report",
      report,
      "--script",
      join(dir, FILES.script),
      "--rpc-url",
      users.devnet.rpcUrl,
    ]);
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^fixed-schedule: PASS/);
    expect(cli.stdout).toContain(
      "every paid response matches exactly one settlement: 12 paid responses, 12 settlements",
    );
  }, 180_000);
});

describe("what Artillery cannot run is refused before anything starts", () => {
  it("a scenario whose settlement needs the agents in this process after the load", async () => {
    const channels = await loadScenario("channels");
    await expect(runScenario(channels, { engine: artilleryEngine({ workers: 2 }) })).rejects.toThrow(
      ScenarioInputError,
    );
    await expect(runScenario(channels, { engine: artilleryEngine({ workers: 2 }) })).rejects.toThrow(
      /cannot run on Artillery: it has an afterLoad step/,
    );
  });

  it("a target function, with the way to give it as data", async () => {
    const scenario = defineScenario({ ...fixedSchedule, target: ({ agent }) => `/weather?a=${agent}` });
    await expect(runScenario(scenario, { engine: artilleryEngine() })).rejects.toThrow(/PathTable/);
  });
});
