import { describe, expect, it } from "vitest";
import { behaviours } from "../../src/agents/index.ts";
import { DEFAULT_MNEMONIC, deriveAccounts } from "../../src/chain/index.ts";
import { pathOf } from "../../src/load/index.ts";
import { ARTILLERY_HD, METRIC } from "../../src/scenario/artillery/job.ts";
import { ArtilleryMetrics, type ArtilleryReport } from "../../src/scenario/artillery/metrics.ts";
import { artilleryPhases, ensureConditions } from "../../src/scenario/artillery/script.ts";
import { slotTallies } from "../../src/scenario/artillery/verify.ts";
import { slotOf, slotWallets } from "../../src/scenario/artillery/worker-wallets.ts";
import {
  defineScenario,
  loadScenario,
  loadSpecOf,
  parseThreshold,
  ScenarioInputError,
  unportableParts,
} from "../../src/scenario/index.ts";
import { policyOfSpec } from "../../src/scenario/load-spec.ts";

const base = defineScenario({
  name: "base",
  description: "d",
  agents: { count: 4 },
  load: { kind: "closed", durationMs: 5_000 },
});

describe("a load model as Artillery phases", () => {
  it("a closed model's agents arrive in its first second, one virtual user each", () => {
    expect(artilleryPhases({ kind: "closed", durationMs: 30_000 }, 50)).toEqual([
      { name: "agents", duration: 1, arrivalRate: 50 },
    ]);
  });

  it("an open model's stages become constant and ramping rates, capped at its requests in flight", () => {
    expect(
      artilleryPhases(
        {
          kind: "open",
          startRate: 10,
          stages: [
            { durationMs: 30_000, rate: 100 },
            { durationMs: 60_000, rate: 100 },
          ],
          maxInFlight: 500,
        },
        1,
      ),
    ).toEqual([
      { name: "stage 1", duration: 30, arrivalRate: 10, rampTo: 100, maxVusers: 500 },
      { name: "stage 2", duration: 60, arrivalRate: 100, mode: "poisson", maxVusers: 500 },
    ]);
  });
});

describe("thresholds as Artillery's ensure conditions", () => {
  it("maps latencies to microseconds, rates to ratios of counters, and names the counters to emit as 0", () => {
    const { conditions, counters, unmapped } = ensureConditions(
      [
        "e2e.p99 < 50ms",
        "verify.p(99) <= 2ms",
        "e2e.session.p50 < 1s",
        "errors.rate < 0.1%",
        "errors.count == 0",
        "errors.invalid_exact_evm_signature == 0",
        "outcomes.paid > 100",
        "outcomes.session.share > 90%",
        "settle.count > 10",
        "throughput.paid > 100/s",
        "drift.e2e.p99 < 20%",
      ].map(parseThreshold),
    );
    expect(conditions.map((c) => c.expression)).toEqual([
      "x402.latency.e2e.p99 < 50000",
      "x402.latency.verify.p99 <= 2000",
      "x402.e2e.session.p50 < 1000000",
      "x402.errors / x402.requests < 0.001",
      "x402.errors == 0",
      "x402.error.invalid_exact_evm_signature == 0",
      "x402.outcome.paid > 100",
      "x402.outcome.session / x402.requests > 0.9",
      "x402.latency.settle.count > 10",
    ]);
    expect(conditions.every((c) => c.strict)).toBe(true);
    expect(unmapped).toEqual(["throughput.paid > 100/s", "drift.e2e.p99 < 20%"]);
    expect(counters.sort()).toEqual(
      [
        METRIC.requests,
        METRIC.errors,
        METRIC.error("invalid_exact_evm_signature"),
        METRIC.outcome("paid"),
        METRIC.outcome("session"),
      ].sort(),
    );
  });
});

describe("a scenario's load as data", () => {
  it("round-trips through JSON with its policy's amounts", () => {
    const spec = loadSpecOf(
      defineScenario({
        ...base,
        target: { paths: ["/a", "/b"], by: "agent" },
        agents: {
          count: 4,
          behaviour: behaviours.underpay,
          policy: {
            maxPerPayment: 5_000n,
            budgetPerRun: 1_000_000n,
            maxPaymentsPerUrl: 3,
            perUrlKey: "origin+path+query",
          },
        },
      }),
      { model: base.load, agents: 7, seed: 3 },
      "Artillery",
    );
    const back = JSON.parse(JSON.stringify(spec)) as typeof spec;
    expect(back).toEqual(spec);
    expect(back.behaviour).toBe("underpay");
    expect(back.agents).toBe(7);
    expect(policyOfSpec(back.policy)).toEqual({
      maxPerPayment: 5_000n,
      budgetPerRun: 1_000_000n,
      maxPaymentsPerUrl: 3,
      perUrlKey: "origin+path+query",
    });
  });

  it("names every part of a scenario that is code, not data", async () => {
    expect(unportableParts(await loadScenario("per-request"))).toEqual([]);
    expect(unportableParts(await loadScenario("payout-split"))).toEqual([]);
    const sessions = unportableParts(await loadScenario("sessions"));
    expect(sessions.join("; ")).toMatch(/target is a function.*afterLoad.*invariants/);
    expect(unportableParts(await loadScenario("failures")).join()).toContain("cases");
    const custom = defineScenario({
      ...base,
      agents: { count: 1, behaviour: (draft) => draft.sign(draft.authorization) },
    });
    expect(unportableParts(custom)).toEqual([
      "its agents' behaviour is a function of its own (use one of the built-in behaviours)",
    ]);
    expect(() => loadSpecOf(custom, { model: base.load, agents: 1, seed: 1 }, "Artillery")).toThrow(
      ScenarioInputError,
    );
  });

  it("a path table picks as the function it stands for", () => {
    const table = { paths: ["/a", "/b", "/c"], by: "agent+iteration" } as const;
    expect([0, 1, 2, 3].map((iteration) => pathOf(table, { agent: 1, iteration }))).toEqual([
      "/b",
      "/c",
      "/a",
      "/b",
    ]);
    expect(pathOf("/fixed", { agent: 9, iteration: 9 })).toBe("/fixed");
  });
});

describe("the workers' wallets", () => {
  it("each thread draws a slot from its identity: stable for one, apart for two, within the range", () => {
    const env = (local: string, worker?: string) => ({
      LOCAL_WORKER_ID: local,
      ...(worker ? { WORKER_ID: worker } : {}),
    });
    expect(slotOf("run", env("1"))).toBe(slotOf("run", env("1")));
    expect(slotOf("run", env("1"))).not.toBe(slotOf("run", env("2")));
    expect(slotOf("run", env("1", "task-a"))).not.toBe(slotOf("run", env("1", "task-b")));
    expect(slotOf("run", env("1"))).not.toBe(slotOf("another run", env("1")));
    for (const local of ["1", "2", "3"]) expect(slotOf("run", env(local))).toBeLessThan(ARTILLERY_HD.slots);
  });

  it("a slot's wallets are the HD range's, the ones the report's counters lead the checks to", () => {
    const slot = 12_345;
    const wallets = slotWallets(slot, 3, DEFAULT_MNEMONIC);
    const expected = deriveAccounts(DEFAULT_MNEMONIC, 3, ARTILLERY_HD.agents + slot * ARTILLERY_HD.slotSize);
    expect(wallets.map((w) => w.address)).toEqual(expected.map((w) => w.address));
    expect(() => slotWallets(slot, ARTILLERY_HD.slotSize + 1, DEFAULT_MNEMONIC)).toThrow(RangeError);
    const tallies = slotTallies({
      [METRIC.slot(slot, "workers")]: 1,
      [METRIC.slot(slot, "wallets")]: 3,
      [METRIC.slot(slot, "paid")]: 40,
      [METRIC.slot(slot, "charged")]: 40_000,
      [METRIC.requests]: 41,
    });
    expect([...tallies]).toEqual([[slot, { workers: 1, wallets: 3, paid: 40, charged: 40_000 }]]);
  });
});

describe("Artillery's report as the run's measurements", () => {
  const summary = (p50: number, count: number) => ({
    min: p50 / 2,
    max: p50 * 3,
    count,
    mean: p50,
    p50,
    p90: p50 * 2,
    p99: p50 * 2.5,
    p999: p50 * 3,
  });
  const report: ArtilleryReport = {
    aggregate: {
      counters: {
        [METRIC.requests]: 30,
        [METRIC.outcome("paid")]: 28,
        [METRIC.outcome("free")]: 0,
        [METRIC.outcome("payment_failed")]: 2,
        [METRIC.errors]: 2,
        [METRIC.error("invalid_exact_evm_signature")]: 2,
      },
      summaries: {
        [METRIC.phase("e2e")]: summary(12_345, 30),
        [METRIC.e2eOf("paid")]: summary(12_000, 28),
        [METRIC.e2ePath("exact/eip3009")]: summary(12_000, 28),
      },
      firstMetricAt: 1_000_002_000,
      lastMetricAt: 1_000_017_000,
    },
    intermediate: [
      { period: 1_000_010_000, counters: { [METRIC.requests]: 20 }, summaries: {} },
      {
        period: 1_000_000_000,
        counters: { [METRIC.requests]: 10, [METRIC.outcome("paid")]: 10 },
        summaries: { [METRIC.phase("e2e")]: summary(10_000, 10) },
      },
    ],
  };

  it("reads microseconds as milliseconds, leaves out counters never incremented, and keeps the periods in order", () => {
    const metrics = new ArtilleryMetrics(report);
    expect(metrics.requests).toBe(30);
    expect(metrics.outcomes).toEqual({ paid: 28, payment_failed: 2 });
    expect(metrics.errors).toEqual({ invalid_exact_evm_signature: 2 });
    expect(metrics.latency().e2e).toEqual({
      count: 30,
      p50: 12.345,
      p90: 24.69,
      p99: 30.863,
      p999: 37.035,
      max: 37.035,
      mean: 12.345,
    });
    expect(Object.keys(metrics.latencyByPath())).toEqual(["exact/eip3009"]);
    expect(metrics.durationMs).toBe(15_000);
    // The workers' own clock, where they sent it, leaves out their set-up and an idle tail.
    const clocked = new ArtilleryMetrics({
      ...report,
      aggregate: {
        ...report.aggregate,
        summaries: {
          ...report.aggregate.summaries,
          [METRIC.clock("start")]: { ...summary(1, 6), min: 1_000_004_000 },
          [METRIC.clock("end")]: { ...summary(1, 30), max: 1_000_016_000 },
        },
      },
    });
    expect(clocked.durationMs).toBe(12_000);
    // The first period began before the run's first metric, the last ended after its last: both are partial.
    expect(metrics.windows(10, 15).map((w) => [w.fromSecond, w.seconds, w.requests, w.p50])).toEqual([
      [0, 8, 10, 10],
      [8, 7, 20, 0],
    ]);
  });
});
