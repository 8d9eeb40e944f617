import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  type CapacityResult,
  type CapacityStep,
  defineScenario,
  findCapacity,
  formatCapacity,
  limitOf,
  type RunReport,
  ScenarioInputError,
  searchNotes,
} from "../../src/scenario/index.ts";
import { runScenario } from "../../src/scenario/runner.ts";
import { steadyStateFixture } from "../support/steady-state.ts";

// Each real step starts a stack; the search's own logic is checked here on runs that report what they are told to.
vi.mock("../../src/scenario/runner.ts", () => ({ runScenario: vi.fn() }));
// A real probe takes 300 ms of CPU before every run; the search's logic does not need it.
vi.mock("../../src/scenario/machine-speed.ts", () => ({ machineSpeed: () => 500 }));

const scenario = defineScenario({
  name: "capacity-sample",
  description: "agents paying GET /weather",
  agents: { count: 4 },
  load: { kind: "closed", durationMs: 1_000 },
});

/** A run at `rate` whose p99 is `p99` ms, judged by `e2e.p99 < 50ms`. */
function stepReport(rate: number, p99: number | null, extra: Partial<RunReport> = {}): RunReport {
  const requests = rate * 5;
  const ok = p99 !== null && p99 < 50;
  const summary = (ms: number) => ({
    count: requests,
    p50: ms / 3,
    p90: ms / 2,
    p99: ms,
    p999: ms,
    max: ms,
    mean: ms / 3,
  });
  return {
    scenario: scenario.name,
    description: scenario.description,
    // What a scenario may put in its config and JSON has no number for: a route priced in atomic units.
    config: { routes: [{ path: "/weather", price: 1000n }] },
    seed: 1,
    runId: `run-${rate}`,
    startedAt: "2025-06-01T12:00:00.000Z",
    durationMs: 5_004,
    interrupted: false,
    requests,
    outcomes: { paid: requests - 2, error: 2 },
    latency: p99 === null ? {} : { e2e: summary(p99) },
    latencyByOutcome: {},
    throughput: {
      requests: requests / 5,
      paid: (requests - 2) / 5,
      timeline: Array.from({ length: 6 }, (_, second) => ({
        second,
        requests: rate,
        paid: rate,
        errors: 0,
        p50: 1,
        p99: 2,
      })),
    },
    distribution: [{ le: 1, count: requests }],
    steadyState: steadyStateFixture(),
    errors: { ECONNRESET: 2 },
    warnings: [],
    chain: {
      startBlock: 1,
      endBlock: 9,
      settlements: requests - 2,
      settlementTransactions: 8,
      gasUsed: "1000",
    },
    thresholds: [{ expr: "e2e.p99 < 50ms", actual: p99, ok }],
    invariants: [{ name: "money in equals money out", ok: true, detail: "balanced" }],
    ok,
    ...extra,
  };
}

/** The ×factor ramp alone, every step once: what the older tests were written against. */
const rampOnly = { warmupMs: 0, trials: 1, bisectSteps: 0 };

/** Runs answer with the p99 this gives for their rate. */
function latencyByRate(p99: (rate: number) => number | null) {
  vi.mocked(runScenario).mockImplementation(async (_scenario, overrides) =>
    stepReport(overrides?.rate ?? 0, p99(overrides?.rate ?? 0)),
  );
}

beforeEach(() => {
  vi.mocked(runScenario).mockReset();
});

describe("findCapacity", () => {
  it("climbs by the factor until a step fails, keeping each step's summary and not its report", async () => {
    latencyByRate((rate) => rate);
    const result = await findCapacity(scenario, {
      startRate: 20,
      factor: 1.5,
      stepDurationMs: 5_000,
      ...rampOnly,
    });

    expect(vi.mocked(runScenario).mock.calls.map(([, o]) => [o?.rate, o?.durationMs])).toEqual([
      [20, 5_000],
      [30, 5_000],
      [45, 5_000],
      [68, 5_000],
    ]);
    expect(result).toMatchObject({
      scenario: "capacity-sample",
      description: "agents paying GET /weather",
      settings: { startRate: 20, factor: 1.5, stepDurationMs: 5_000, maxSteps: 12, bisectSteps: 0 },
      highestRate: 45,
      stoppedBy: "failure",
    });
    expect(result.steps.map((s) => [s.rate, s.ok])).toEqual([
      [20, true],
      [30, true],
      [45, true],
      [68, false],
    ]);
    expect(result.steps[3]).toMatchObject({
      phase: "ramp",
      chain: { settlements: 338, transactions: 8, gasUsed: "1000" },
      rate: 68,
      achieved: 68,
      paid: 67.6,
      requests: 340,
      errors: 2,
      durationMs: 5_004,
      p50: 68 / 3,
      p99: 68,
      ok: false,
      failed: ["e2e.p99 < 50ms"],
      thresholds: [{ expr: "e2e.p99 < 50ms", actual: 68, ok: false }],
      brokenInvariants: [],
    });
  });

  it("gives a result JSON writes as it is and reads back whole, whatever the runs' configs held", async () => {
    latencyByRate((rate) => rate);
    const result = await findCapacity(scenario, { startRate: 20 });
    const json = JSON.stringify(result);
    expect(JSON.parse(json)).toEqual(result);
    // The steps' timelines and histograms stay behind: a search of many steps stays small.
    expect(json).not.toContain("timeline");
    expect(json.length).toBeLessThan(1_500 * result.steps.length);
  });

  it("reports no rate held when the first step fails, and every failure by name", async () => {
    vi.mocked(runScenario).mockResolvedValue(
      stepReport(20, null, {
        invariants: [{ name: "no authorization settled twice", ok: false, detail: "1 nonce settled twice" }],
        cases: [{ name: "replay", expected: "402", observed: "200", ok: false }],
        error: { step: "balances after", message: "RPC timeout" },
      }),
    );
    const result = await findCapacity(scenario, {});

    expect(result.highestRate).toBeNull();
    expect(result.stoppedBy).toBe("failure");
    expect(result.steps).toHaveLength(1);
    expect(result.steps[0]).toMatchObject({
      p50: null,
      p99: null,
      failed: [
        "e2e.p99 < 50ms",
        "no authorization settled twice",
        "replay",
        "balances after failed: RPC timeout",
      ],
      brokenInvariants: [
        { name: "no authorization settled twice", ok: false, detail: "1 nonce settled twice" },
      ],
    });
  });

  it("stops at the step limit when every step holds, the last rate a lower bound", async () => {
    latencyByRate(() => 10);
    const result = await findCapacity(scenario, { startRate: 10, factor: 2, maxSteps: 3 });
    expect(result.steps.map((s) => s.rate)).toEqual([10, 20, 40]);
    expect(result).toMatchObject({ highestRate: 40, stoppedBy: "max-steps" });
  });

  it("stops when interrupted: a step cut short holds nothing, one finished whole still holds", async () => {
    vi.mocked(runScenario).mockResolvedValueOnce(stepReport(20, 10, { interrupted: true, ok: false }));
    const cut = await findCapacity(scenario, { warmupMs: 0 });
    expect(cut).toMatchObject({ highestRate: null, stoppedBy: "interrupted" });
    expect(cut.steps[0]?.failed).toEqual(["interrupted"]);

    const abort = new AbortController();
    vi.mocked(runScenario).mockImplementationOnce(async () => {
      abort.abort();
      return stepReport(20, 10);
    });
    const after = await findCapacity(scenario, { signal: abort.signal, warmupMs: 0 });
    expect(after).toMatchObject({ highestRate: 20, stoppedBy: "interrupted" });
    expect(after.steps).toHaveLength(1);
  });

  it("bisects between the ramp's last rate that held and its first that failed, to the knee", async () => {
    latencyByRate((rate) => rate);
    const result = await findCapacity(scenario, { startRate: 20, warmupMs: 0, trials: 1 });

    // 45 held and 68 failed; then 57 ✗, 51 ✗, 48 ✓, 50 ✗ (four bisection steps, the default bound).
    expect(result.steps.map((s) => [s.phase, s.rate, s.ok])).toEqual([
      ["ramp", 20, true],
      ["ramp", 30, true],
      ["ramp", 45, true],
      ["ramp", 68, false],
      ["bisect", 57, false],
      ["bisect", 51, false],
      ["bisect", 48, true],
      ["bisect", 50, false],
    ]);
    expect(result).toMatchObject({
      highestRate: 48,
      stoppedBy: "failure",
      settings: { bisectSteps: 4, tolerance: 0.05, warmupMs: 0, trials: 1 },
    });
  });

  it("stops bisecting once the interval is within the tolerance", async () => {
    latencyByRate((rate) => rate);
    const result = await findCapacity(scenario, { startRate: 20, warmupMs: 0, trials: 1, tolerance: 0.2 });
    // 45..68, 45..57, then 45..51: within 20% of 45.
    expect(result.steps.filter((s) => s.phase === "bisect").map((s) => s.rate)).toEqual([57, 51]);
    expect(result.highestRate).toBe(45);
  });

  it("warms up once, off the record, at the start rate", async () => {
    latencyByRate(() => 10);
    const result = await findCapacity(scenario, {
      startRate: 10,
      maxSteps: 2,
      stepDurationMs: 3_000,
      trials: 1,
    });
    expect(vi.mocked(runScenario).mock.calls.map(([, o]) => [o?.rate, o?.durationMs, o?.progress])).toEqual([
      [10, 2_000, false],
      [10, 3_000, undefined],
      [15, 3_000, undefined],
    ]);
    expect(result.steps.map((s) => s.rate)).toEqual([10, 15]);
  });

  it("decides each rate by the majority of its runs, and never outvotes a broken invariant", async () => {
    const broken = { invariants: [{ name: "no authorization settled twice", ok: false, detail: "1 twice" }] };
    vi.mocked(runScenario)
      // 20/s: a burst of someone else's work fails the first run; the next two hold.
      .mockResolvedValueOnce(stepReport(20, 60))
      .mockResolvedValueOnce(stepReport(20, 10))
      .mockResolvedValueOnce(stepReport(20, 10))
      // 30/s: a lucky first run holds, the next two do not: the rate did not hold.
      .mockResolvedValueOnce(stepReport(30, 10))
      .mockResolvedValueOnce(stepReport(30, 70))
      .mockResolvedValueOnce(stepReport(30, 80));
    const voted = await findCapacity(scenario, { startRate: 20, warmupMs: 0, bisectSteps: 0 });
    expect(vi.mocked(runScenario).mock.calls.map(([, o]) => o?.rate)).toEqual([20, 20, 20, 30, 30, 30]);
    expect(voted.highestRate).toBe(20);
    expect(voted.steps.map((s) => [s.rate, s.ok, s.p99, s.trials?.map((t) => t.ok)])).toEqual([
      [20, true, 10, [false, true, true]],
      [30, false, 80, [true, false, false]],
    ]);
    expect(formatCapacity(voted)).toContain("held (2 of 3 runs held; p99 60, 10, 10 ms)");

    // Two that agree decide; a broken invariant fails the rate on its first run.
    vi.mocked(runScenario).mockReset();
    vi.mocked(runScenario)
      .mockResolvedValueOnce(stepReport(20, 10))
      .mockResolvedValueOnce(stepReport(20, 10))
      .mockResolvedValueOnce(stepReport(30, 10, { ...broken, ok: false }));
    const result = await findCapacity(scenario, { startRate: 20, warmupMs: 0, bisectSteps: 0 });
    expect(vi.mocked(runScenario).mock.calls.map(([, o]) => o?.rate)).toEqual([20, 20, 30]);
    expect(result.steps.map((s) => [s.rate, s.ok, s.trials?.length])).toEqual([
      [20, true, 2],
      [30, false, undefined],
    ]);
    await expect(findCapacity(scenario, { trials: 2 })).rejects.toThrow(/trials must be an odd whole number/);
  });

  it("prices the knee's settlements from its step's chain figures", async () => {
    latencyByRate((rate) => rate);
    const result = await findCapacity(scenario, {
      startRate: 20,
      ...rampOnly,
      cost: { ethUsd: 2_000, l2BaseFeeGwei: 0.02 },
    });
    // The knee, 45/s: 223 settlements in 8 transactions, 1000 gas in all.
    expect(result.cost).toMatchObject({
      settlements: 223,
      transactions: 8,
      settlementsPerTransaction: 27.875,
      prices: { ethUsd: 2_000, l2BaseFeeGwei: 0.02, l1: { source: "defaults" } },
    });
    expect(formatCapacity(result)).toMatch(
      /cost at 45\/s: 4 gas per settlement \(measured\), 27\.875 per transaction/,
    );
  });

  it("refuses settings that could not climb before running anything", async () => {
    await expect(findCapacity(scenario, { factor: 1 })).rejects.toThrow(ScenarioInputError);
    await expect(findCapacity(scenario, { startRate: 0 })).rejects.toThrow(
      /startRate must be a positive number/,
    );
    await expect(findCapacity(scenario, { maxSteps: 2.5 })).rejects.toThrow(
      /maxSteps must be a positive integer/,
    );
    await expect(findCapacity(scenario, { bisectSteps: -1 })).rejects.toThrow(/bisectSteps must be/);
    await expect(findCapacity(scenario, { tolerance: 1 })).rejects.toThrow(/tolerance must be/);
    await expect(findCapacity(scenario, { cost: { ethUsd: -1 } })).rejects.toThrow(/ethUsd must be/);
    expect(runScenario).not.toHaveBeenCalled();
  });
});

describe("formatCapacity", () => {
  const step = (rate: number, ok: boolean, failed: string[] = []) => ({
    rate,
    achieved: rate - 0.25,
    paid: rate - 0.25,
    requests: rate * 5,
    errors: 0,
    durationMs: 5_000,
    p50: ok ? 8.125 : null,
    p99: ok ? 20.5 : null,
    ok,
    failed,
    thresholds: [],
    brokenInvariants: [],
  });
  const result = (highestRate: number | null, steps: CapacityResult["steps"]): CapacityResult => ({
    scenario: "per-request",
    description: "",
    startedAt: "2025-06-01T12:00:00.000Z",
    settings: { startRate: 20, factor: 1.5, stepDurationMs: 5_000, maxSteps: 12 },
    highestRate,
    stoppedBy: "failure",
    steps,
  });

  it("prints the highest rate that held and one line per step", () => {
    expect(
      formatCapacity(
        result(30, [step(20, true), step(30, true), step(45, false, ["e2e.p99 < 50ms", "replay"])]),
      ),
    ).toBe(
      [
        "per-request: highest rate that held 30/s",
        "      rate  achieved    p50 ms    p99 ms",
        "        20     19.75     8.125      20.5  held",
        "        30     29.75     8.125      20.5  held",
        "        45     44.75         -         -  failed: e2e.p99 < 50ms; replay",
        "",
      ].join("\n"),
    );
  });

  it("says in words that no rate held, never none/s", () => {
    const text = formatCapacity(result(null, [step(20, false, ["e2e.p99 < 50ms"])]));
    expect(text.split("\n")[0]).toBe("per-request: no rate held; the lowest tried was 20/s");
    expect(text).not.toContain("none");
  });
});

describe("limitOf", () => {
  const step = (
    rate: number,
    ok: boolean,
    phases: CapacityStep["phases"],
    cpu: CapacityStep["cpu"] = { harness: 0.6, anvil: 0.3, cores: 2 },
  ): CapacityStep => ({
    rate,
    achieved: rate,
    paid: rate,
    requests: rate * 5,
    errors: 0,
    durationMs: 5_000,
    p50: 10,
    p99: ok ? 20 : 300,
    ok,
    failed: ok ? [] : ["e2e.p99 < 250ms"],
    thresholds: [],
    brokenInvariants: [],
    phases,
    cpu,
  });
  const calm = { challenge: { p50: 2, p99: 4 }, verify: { p50: 3, p99: 5 }, settle: { p50: 8, p99: 20 } };

  it("names the phase whose p50 grew most from the knee to the first rate that failed", () => {
    const queued = { ...calm, settle: { p50: 90, p99: 400 }, paid: { p50: 100, p99: 420 } };
    expect(limitOf([step(45, true, calm), step(68, false, queued)], 45)).toEqual({
      resource: "chain",
      reason:
        "68/s failed e2e.p99 < 250ms; settlement (relayers and block building) grew most: settle p50 90 ms, up 82 ms from 45/s; CPU: harness 0.6 cores, anvil 0.3 cores of 2",
      rate: 68,
    });
    const verifying = { ...calm, verify: { p50: 60, p99: 200 } };
    expect(limitOf([step(45, true, calm), step(68, false, verifying)], 45)?.resource).toBe("facilitator");
    const challenged = { ...calm, challenge: { p50: 60, p99: 200 } };
    expect(limitOf([step(45, true, calm), step(68, false, challenged)], 45)?.resource).toBe("server");
  });

  it("tells relayer keys from the chain by the facilitator's settlement queue", () => {
    const queued = { ...calm, settle: { p50: 90, p99: 400 } };
    const load = {
      relayers: 4,
      busyShare: 1,
      allBusyShare: 0.97,
      queuedMean: 41.5,
      queuedMax: 180,
      samples: 250,
    };
    const relayersOut = { ...step(68, false, queued), settlementLoad: load };
    expect(limitOf([step(45, true, calm), relayersOut], 45)).toMatchObject({
      resource: "relayers",
      reason: expect.stringContaining(
        "settlement, queued for relayer keys (all 4 relayer keys busy 97% of the step, 41.5 settlements waiting for one on average (at most 180)) grew most",
      ),
    });
    const keysToSpare = { ...load, busyShare: 0.4, allBusyShare: 0.1, queuedMean: 0.2, queuedMax: 3 };
    expect(
      limitOf([step(45, true, calm), { ...relayersOut, settlementLoad: keysToSpare }], 45),
    ).toMatchObject({
      resource: "chain",
      reason: expect.stringContaining("settlement, waiting for blocks with keys to spare"),
    });
  });

  it("says the machine ran out of cores when harness and anvil kept them all busy", () => {
    const queued = { ...calm, settle: { p50: 90, p99: 400 } };
    const limit = limitOf(
      [step(45, true, calm), step(68, false, queued, { harness: 1.4, anvil: 0.5, cores: 2 })],
      45,
    );
    expect(limit?.resource).toBe("cpu");
    expect(limit?.reason).toContain("the machine's cores were all busy, and settlement");
  });

  it("says other processes took the cores when the machine was busy with more than this run", () => {
    const slow = { ...calm, paid: { p50: 400, p99: 900 } };
    const limit = limitOf(
      [step(45, true, calm), step(68, false, slow, { harness: 0.3, anvil: 0.1, cores: 2, machine: 1.95 })],
      45,
    );
    expect(limit?.resource).toBe("cpu");
    expect(limit?.reason).toContain("mostly with other processes (rerun on a quiet machine)");
    expect(limit?.reason).toContain(
      "CPU: harness 0.3 cores, anvil 0.1 cores, other processes 1.55 cores of 2",
    );
  });

  it("has nothing to say when no step failed", () => {
    expect(limitOf([step(45, true, calm)], 45)).toBeUndefined();
  });
});

describe("searchNotes", () => {
  const step = (requests: number, machine: number, expr = "e2e.p99 < 250ms"): CapacityStep => ({
    rate: requests / 3,
    achieved: requests / 3,
    paid: requests / 3,
    requests,
    errors: 0,
    durationMs: 3_000,
    p50: 10,
    p99: 20,
    ok: true,
    failed: [],
    thresholds: [{ expr, actual: 20, ok: true }],
    brokenInvariants: [],
    cpu: { harness: 0.3, anvil: 0.1, cores: 2, machine },
  });

  it("says when other processes held the cores, and when a p99 was judged on too few requests", () => {
    expect(searchNotes([step(90, 1.9), step(3_000, 2)])).toEqual([
      "other processes kept 1.55 of 2 cores busy on average: the knee is what was left of the machine, and moves with their load",
      "1 step judged a p99 on fewer than 1,000 requests (as few as 90): there it is one of the slowest few requests; a longer --duration steadies it",
    ]);
  });

  it("has nothing to say of a quiet machine and enough requests, or of a threshold on no p99", () => {
    expect(searchNotes([step(3_000, 0.5), step(90, 0.5, "errors.rate < 0.01")])).toEqual([]);
  });

  it("says when the machine's own speed moved between steps by more than 10%", () => {
    const at = (speed: number) => ({ ...step(3_000, 0.5), speed });
    expect(searchNotes([at(600), at(630), at(580)])).toEqual([]);
    expect(searchNotes([at(600), at(880), at(450)])).toEqual([
      "the machine's speed for a fixed piece of work moved 96% between steps (450–880 SHA-256 digests per ms): a CPU-bound knee moves with it, so two searches here can differ as much; a machine with cores of its own gives a steadier answer",
    ]);
  });
});
