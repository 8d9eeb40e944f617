import { describe, expect, it } from "vitest";
import { RunMetrics } from "../../src/load/index.ts";
import {
  evaluateThresholds,
  parseThreshold,
  type RunReport,
  type RunSample,
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

/** Samples every second of a run whose harness memory grows by `harnessPerS` and anvil's by `anvilPerS`. */
const samplesOf = (seconds: number, harnessPerS: number, anvilPerS: number | null): RunSample[] =>
  Array.from({ length: seconds + 1 }, (_, second) => ({
    second,
    block: second * 5,
    harnessRssMb: 100 + harnessPerS * second,
    anvilRssMb: anvilPerS === null ? null : 40 + anvilPerS * second,
  }));

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
    const steady = steadyState(metrics, 30_000, [
      { second: 0, block: 1, harnessRssMb: 100, anvilRssMb: 40 },
      { second: 29, block: 412, harnessRssMb: 150, anvilRssMb: 70 },
      { second: 30, block: 420, harnessRssMb: 160, anvilRssMb: 70 },
    ]);
    expect(steady.windowSeconds).toBe(5);
    expect(steady.windows.map((w) => [w.fromSecond, w.throughput])).toEqual([
      [0, 40],
      [5, 40],
      [10, 40],
      [15, 40],
      [20, 40],
      [25, 30],
    ]);
    expect(steady.windows.at(-1)).toMatchObject({ block: 420, harnessRssMb: 160, anvilRssMb: 70 });
    expect(steady.drift.throughput).toBeCloseTo(0.25, 3);
    expect(steady.drift.e2e.p50).toBeCloseTo(1, 1);
    expect(steady.drift.e2e.p99).toBeCloseTo(1, 1);
    // Two samples past the first window: too few for a slope, so growth over the run's whole length.
    expect(steady.memory.harness).toEqual({ startMb: 100, endMb: 160, growthMb: 60, growthPerHourMb: 7200 });
    expect(steady.memory.anvil).toEqual({ startMb: 40, endMb: 70, growthMb: 30, growthPerHourMb: 3600 });
  });

  it("give memory growth per hour as the slope after the first window, so start-up is not read as a leak", () => {
    const metrics = metricsOf(
      60,
      () => 10,
      () => 5,
    );
    // The harness jumps 200 MB in its first 10 s (start-up), then holds; anvil grows 2 MB/s throughout.
    const samples = samplesOf(60, 0, 2).map((s) => ({ ...s, harnessRssMb: s.second < 10 ? 100 : 300 }));
    const steady = steadyState(metrics, 60_000, samples);
    expect(steady.windowSeconds).toBe(10);
    expect(steady.memory.harness).toEqual({ startMb: 100, endMb: 300, growthMb: 200, growthPerHourMb: 0 });
    expect(steady.memory.anvil).toEqual({ startMb: 40, endMb: 160, growthMb: 120, growthPerHourMb: 7200 });
    expect(steadyState(metrics, 60_000, samplesOf(60, 1, null)).memory.anvil).toBeNull();
  });

  it("leave a partial last window out of the drift, and say nothing with fewer than two full windows", () => {
    // The last 0.4 s finishes only a few requests, slowly: a whole window of that would be drift, a sliver is not.
    const metrics = metricsOf(
      11,
      (s) => (s < 10 ? 40 : 3),
      (s) => (s < 10 ? 10 : 90),
    );
    const steady = steadyState(metrics, 10_400, []);
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
    );
    expect(short.drift).toEqual({ e2e: { p50: null, p99: null }, throughput: null });
  });

  it("are what the drift and memory thresholds read", () => {
    const metrics = metricsOf(
      30,
      (s) => (s < 25 ? 40 : 30),
      (s) => (s < 25 ? 10 : 20),
    );
    const report = { steadyState: steadyState(metrics, 30_000, samplesOf(30, 2, 3)) } as unknown as RunReport;
    const results = evaluateThresholds(
      [
        "drift.e2e.p99 < 20%",
        "drift.throughput < 30%",
        "memory.harness.growth < 100MB",
        "drift.e2e.p50 < 2",
        "memory.anvil.growthPerHour < 10000MB",
        "memory.anvil.rss < 100MB",
      ].map(parseThreshold),
      report,
    );
    // anvil: 3 MB/s is 10,800 MB an hour; it ends at 130 MB.
    expect(results.map((r) => r.ok)).toEqual([false, true, true, true, false, false]);
    const attached = {
      steadyState: steadyState(metrics, 30_000, samplesOf(30, 2, null)),
    } as unknown as RunReport;
    expect(evaluateThresholds([parseThreshold("memory.anvil.rss < 100MB")], attached)[0]).toMatchObject({
      actual: null,
      ok: false,
    });
    expect(() => parseThreshold("drift.bogus < 1")).toThrow(
      /use drift\.e2e\.p50, drift\.e2e\.p99 or drift\.throughput/,
    );
    expect(() => parseThreshold("memory.facilitator.growth < 1MB")).toThrow(
      /memory\.<harness\|anvil>\.growth/,
    );
  });
});
