import { describe, expect, it } from "vitest";
import {
  arrivalSchedule,
  DEFAULT_MAX_IN_FLIGHT,
  executeLoad,
  type OpenModel,
  RunMetrics,
  rateAt,
} from "../../src/load/index.ts";

describe("open model", () => {
  const ramp: OpenModel = {
    kind: "open",
    startRate: 0,
    stages: [
      { durationMs: 2_000, rate: 200 },
      { durationMs: 1_000, rate: 200 },
    ],
  };

  it("issues the same schedule for the same seed, and another for another seed", () => {
    expect(arrivalSchedule(ramp, 7)).toEqual(arrivalSchedule(ramp, 7));
    expect(arrivalSchedule(ramp, 7)).not.toEqual(arrivalSchedule(ramp, 8));
  });

  it("follows the ramp: about rate × time arrivals, fewer early than late", () => {
    const times = arrivalSchedule(ramp, 1);
    // Expected count: 200/s ramped over 2 s (200) plus 1 s at 200/s (200) = 400.
    expect(times.length).toBeGreaterThan(340);
    expect(times.length).toBeLessThan(460);
    const firstSecond = times.filter((t) => t < 1_000).length;
    const lastSecond = times.filter((t) => t >= 2_000).length;
    expect(lastSecond).toBeGreaterThan(firstSecond * 2);
    expect(rateAt(ramp, 1_000)).toBe(100);
    expect(Math.max(...times)).toBeLessThan(3_000);
  });
});

describe("executeLoad", () => {
  it("runs a closed model for its iterations and stops", async () => {
    const seen: string[] = [];
    const summary = await executeLoad(
      { kind: "closed", iterations: 3, durationMs: 10_000 },
      { agents: 4, seed: 1, task: async ({ agent, iteration }) => void seen.push(`${agent}:${iteration}`) },
    );
    expect(summary.issued).toBe(12);
    expect(new Set(seen).size).toBe(12);
  });

  it("stops a closed model at its duration even when iterations are unbounded", async () => {
    const started = performance.now();
    const summary = await executeLoad(
      { kind: "closed", durationMs: 300, thinkTimeMs: 20 },
      { agents: 2, seed: 1, task: async () => {} },
    );
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(summary.issued).toBeGreaterThan(2);
  });

  it("drops arrivals beyond maxInFlight in an open model, counting them", async () => {
    const release: (() => void)[] = [];
    const summary = await executeLoad(
      { kind: "open", stages: [{ durationMs: 300, rate: 200 }], maxInFlight: 5 },
      {
        agents: 5,
        seed: 3,
        task: () =>
          new Promise<void>((resolve) => {
            release.push(resolve);
            if (release.length === 5)
              setTimeout(() => {
                for (const r of release) r();
              }, 400);
          }),
      },
    );
    expect(summary.issued).toBe(5);
    expect(summary.dropped).toBeGreaterThan(20);
  });

  it("runs an open model for its whole duration, even when the last arrival comes early", async () => {
    // At 4/s over 1 s the seeded schedule's last arrival is well before the end.
    const model: OpenModel = { kind: "open", stages: [{ durationMs: 1_000, rate: 4 }] };
    expect(arrivalSchedule(model, 1).at(-1)).toBeLessThan(500);
    const summary = await executeLoad(model, { agents: 1, seed: 1, task: async () => {} });
    expect(summary.durationMs).toBeGreaterThanOrEqual(1_000);
  });

  it("caps an open model's requests in flight by default, so an overloaded run cannot exhaust memory", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let issued = 0;
    const summary = await executeLoad(
      { kind: "open", stages: [{ durationMs: 1_000, rate: 6_000 }] },
      {
        agents: 10,
        seed: 1,
        task: () => {
          issued += 1;
          // The system under test stops answering: every request hangs until the cap has been hit a while.
          if (issued === DEFAULT_MAX_IN_FLIGHT) setTimeout(release, 300);
          return gate;
        },
      },
    );
    expect(summary.issued).toBeGreaterThanOrEqual(DEFAULT_MAX_IN_FLIGHT);
    expect(summary.dropped).toBeGreaterThan(100);
  });

  it("stops issuing on abort", async () => {
    const abort = new AbortController();
    let issued = 0;
    const run = executeLoad(
      { kind: "closed", durationMs: 60_000, thinkTimeMs: 5 },
      {
        agents: 1,
        seed: 1,
        signal: abort.signal,
        task: async () => {
          issued += 1;
          if (issued === 3) abort.abort();
        },
      },
    );
    const summary = await run;
    expect(summary.issued).toBe(3);
    expect(summary.abandoned).toBe(0);
  });

  it("waits for work in flight after an abort, but no longer than drainMs", async () => {
    const abort = new AbortController();
    const never = new Promise<void>(() => {});
    let finishing: () => void = () => {};
    const started = performance.now();
    const summary = await executeLoad(
      { kind: "open", stages: [{ durationMs: 60_000, rate: 1000 }] },
      {
        agents: 2,
        seed: 1,
        signal: abort.signal,
        drainMs: 300,
        task: ({ iteration, agent }) => {
          // Agent 0's first task finishes soon after the abort; every other one hangs like a held request.
          if (agent === 0 && iteration === 0) return new Promise<void>((resolve) => (finishing = resolve));
          if (agent === 1 && iteration === 0) {
            abort.abort();
            setImmediate(() => finishing());
          }
          return never;
        },
      },
    );
    expect(summary.issued).toBe(2);
    expect(summary.abandoned).toBe(1);
    // Ended by the drain bound, not the model's minute.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("RunMetrics", () => {
  it("summarises phases in ms, counts outcomes and codes, and builds a timeline", () => {
    const metrics = new RunMetrics(0);
    for (let i = 1; i <= 100; i++) metrics.record({ outcome: "paid", timings: { e2e: i, sign: 0.05 } }, 500);
    metrics.record(
      { outcome: "payment_failed", errorCode: "invalid_exact_evm_insufficient_balance", timings: { e2e: 3 } },
      1_500,
    );
    const latency = metrics.latency();
    expect(latency.e2e?.count).toBe(101);
    expect(latency.e2e?.p50).toBeCloseTo(50, 0);
    expect(latency.e2e?.max).toBeCloseTo(100, 0);
    expect(latency.sign?.p99).toBeCloseTo(0.05, 2);
    expect(metrics.outcomes).toEqual({ paid: 100, payment_failed: 1 });
    expect(metrics.errors).toEqual({ invalid_exact_evm_insufficient_balance: 1 });
    expect(metrics.timeline().map((t) => [t.second, t.requests, t.paid, t.errors])).toEqual([
      [0, 100, 100, 0],
      [1, 1, 0, 1],
    ]);
    const histogram = metrics.distribution();
    expect(histogram.reduce((n, b) => n + b.count, 0)).toBe(101);
    expect(histogram.at(-1)?.le).toBeGreaterThanOrEqual(100);
  });
});
