import { describe, expect, it } from "vitest";
import { RunMetrics } from "../../src/load/index.ts";
import {
  evaluateThresholds,
  parseThreshold,
  type RunReport,
  steadyState,
  windowSeconds,
} from "../../src/scenario/index.ts";

/** A run whose every second finishes `rate(second)` requests taking `e2e(second)` ms each. */
function metricsOf(seconds: number, rate: (s: number) => number, e2e: (s: number) => number): RunMetrics {
  const metrics = new RunMetrics(0);
  for (let second = 0; second < seconds; second++) {
    for (let i = 0; i < rate(second); i++) {
      metrics.record({ outcome: "paid", timings: { e2e: e2e(second) } }, second * 1000 + 500);
    }
  }
  return metrics;
}

const memory = { startMb: 100, endMb: 160 };

describe("steady-state figures", () => {
  it("use minutes on long runs and a sixth of a short run, at least 5 s", () => {
    expect(windowSeconds(600_000)).toBe(60);
    expect(windowSeconds(180_000)).toBe(60);
    expect(windowSeconds(120_000)).toBe(20);
    expect(windowSeconds(10_000)).toBe(5);
  });

  it("give each window's throughput and latency, and the drift from the first full window to the last", () => {
    // 30 s in 5 s windows: latency doubles and throughput falls by a quarter from the first to the last.
    const metrics = metricsOf(
      30,
      (s) => (s < 25 ? 40 : 30),
      (s) => (s < 25 ? 10 : 20),
    );
    const steady = steadyState(metrics, 30_000, [{ second: 29, block: 412, harnessRssMb: 150 }], memory);
    expect(steady.windowSeconds).toBe(5);
    expect(steady.windows.map((w) => [w.fromSecond, w.throughput])).toEqual([
      [0, 40],
      [5, 40],
      [10, 40],
      [15, 40],
      [20, 40],
      [25, 30],
    ]);
    expect(steady.windows.at(-1)).toMatchObject({ block: 412, harnessRssMb: 150 });
    expect(steady.drift.throughput).toBeCloseTo(0.25, 3);
    expect(steady.drift.e2e.p50).toBeCloseTo(1, 1);
    expect(steady.drift.e2e.p99).toBeCloseTo(1, 1);
    expect(steady.memory.harness).toEqual({ startMb: 100, endMb: 160, growthMb: 60, growthPerHourMb: 7200 });
  });

  it("leave a partial last window out of the drift, and say nothing with fewer than two full windows", () => {
    // The last 0.4 s finishes only a few requests, slowly: a whole window of that would be drift, a sliver is not.
    const metrics = metricsOf(
      11,
      (s) => (s < 10 ? 40 : 3),
      (s) => (s < 10 ? 10 : 90),
    );
    const steady = steadyState(metrics, 10_400, [], memory);
    expect(steady.windows.map((w) => w.seconds)).toEqual([5, 5, 0.4]);
    expect(steady.drift.throughput).toBe(0);
    expect(steady.drift.e2e.p99).toBe(0);

    const short = steadyState(
      metricsOf(
        4,
        () => 10,
        () => 5,
      ),
      4_000,
      [],
      memory,
    );
    expect(short.drift).toEqual({ e2e: { p50: null, p99: null }, throughput: null });
  });

  it("are what the drift and memory thresholds read", () => {
    const metrics = metricsOf(
      30,
      (s) => (s < 25 ? 40 : 30),
      (s) => (s < 25 ? 10 : 20),
    );
    const report = { steadyState: steadyState(metrics, 30_000, [], memory) } as unknown as RunReport;
    const results = evaluateThresholds(
      [
        "drift.e2e.p99 < 20%",
        "drift.throughput < 30%",
        "memory.harness.growth < 100MB",
        "drift.e2e.p50 < 2",
      ].map(parseThreshold),
      report,
    );
    expect(results.map((r) => r.ok)).toEqual([false, true, true, true]);
    expect(() => parseThreshold("drift.bogus < 1")).toThrow(
      /use drift\.e2e\.p50, drift\.e2e\.p99 or drift\.throughput/,
    );
    expect(() => parseThreshold("memory.anvil.growth < 1MB")).toThrow(/memory\.harness\.growth/);
  });
});
