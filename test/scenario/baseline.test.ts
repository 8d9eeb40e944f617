import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FacilitatorMetrics } from "../../src/facilitator/metrics.ts";
import type { FacilitatorScheme } from "../../src/facilitator/scheme.ts";
import {
  BaselineError,
  compareReports,
  facilitatorCallCount,
  formatComparison,
  type Histogram,
  loadBaseline,
  paymentCost,
  rankTest,
  WireTally,
} from "../../src/scenario/baseline.ts";
import type { RunReport } from "../../src/scenario/index.ts";
import { renderHtmlReport } from "../../src/scenario/report-html.ts";
import { formatSummary } from "../../src/scenario/summary.ts";

/** Quarter-octave buckets as the runner writes them, from a list of sample counts per bucket index. */
const histogram = (first: number, counts: number[]): Histogram =>
  counts.map((count, i) => ({ le: Math.round(2 ** ((first + i + 1) / 4)) / 1000, count }));

const total = (h: Histogram) => h.reduce((n, b) => n + b.count, 0);

/** A report with what the comparison reads; `scale` stretches the e2e distribution (a slower run). */
function report(distribution: Histogram, overrides: Partial<RunReport> = {}): RunReport {
  const n = total(distribution);
  let seen = 0;
  const p50 = distribution.find((b) => {
    seen += b.count;
    return seen >= n / 2;
  })?.le as number;
  return {
    scenario: "per-request",
    description: "",
    config: { agents: 5, load: { kind: "closed", durationMs: 5000 }, devnet: { profile: "instant" } },
    seed: 1,
    runId: "run",
    startedAt: "2026-12-02T00:00:00.000Z",
    durationMs: 5000,
    interrupted: false,
    requests: n,
    outcomes: { paid: n },
    latency: { e2e: { count: n, p50, p90: p50 * 2, p99: p50 * 3, p999: p50 * 4, max: p50 * 5, mean: p50 } },
    latencyByOutcome: {},
    throughput: { requests: n / 5, paid: n / 5, timeline: [] },
    distribution: [...distribution],
    steadyState: {
      windowSeconds: 5,
      windows: [],
      drift: { e2e: { p50: null, p99: null }, throughput: null },
      memory: { harness: { startMb: 1, endMb: 1, growthMb: 0, growthPerHourMb: 0 } },
    },
    errors: {},
    warnings: [],
    chain: { startBlock: 1, endBlock: 2, settlements: n, settlementTransactions: n, gasUsed: "0" },
    thresholds: [],
    invariants: [],
    ok: true,
    ...overrides,
  } as RunReport;
}

// A bell of about 2,000 requests over 12 buckets (three octaves).
const BELL = [5, 20, 60, 140, 260, 380, 420, 330, 210, 110, 45, 20];
const shifted = (by: number) => histogram(40 + by, BELL);

describe("rankTest", () => {
  it("gives scipy's Mann–Whitney U (asymptotic, tie-corrected, with continuity) on binned samples", () => {
    // scipy.stats.mannwhitneyu([2]*6+[3]*10+[4]*4, [1]*5+[2]*10+[3]*5, alternative=…, method="asymptotic")
    const base = [
      { le: 1, count: 5 },
      { le: 2, count: 10 },
      { le: 3, count: 5 },
    ];
    const now = [
      { le: 2, count: 6 },
      { le: 3, count: 10 },
      { le: 4, count: 4 },
    ];
    const test = rankTest(base, now);
    expect(test.superiority).toBe(0.7875);
    expect(test.pSlower).toBeCloseTo(0.0004833449331221531, 8);
    expect(test.pFaster).toBeCloseTo(0.99956400037286, 8);
  });

  it("sees no difference between a run and itself, and the same samples always give the same answer", () => {
    const test = rankTest(shifted(0), shifted(0));
    expect(test.superiority).toBe(0.5);
    expect(test.pSlower).toBeGreaterThan(0.4);
    expect(rankTest(shifted(0), shifted(3))).toEqual(rankTest(shifted(0), shifted(3)));
  });

  it("answers no evidence when a side is empty or nothing varies", () => {
    expect(rankTest([], shifted(0))).toMatchObject({ pSlower: 1, pFaster: 1, superiority: 0.5 });
    expect(rankTest([{ le: 1, count: 9 }], [{ le: 1, count: 9 }])).toMatchObject({ pSlower: 1, z: 0 });
  });
});

describe("compareReports", () => {
  it("calls a run twice as slow (four quarter-octaves) a regression, and one twice as fast an improvement", () => {
    const slower = compareReports(report(shifted(0)), report(shifted(4)));
    expect(slower.rows[0]).toMatchObject({ metric: "e2e latency (median)", verdict: "regressed" });
    expect(slower.regressed).toBe(true);
    const faster = compareReports(report(shifted(4)), report(shifted(0)));
    expect(faster.rows[0]?.verdict).toBe("improved");
    expect(faster.regressed).toBe(false);
  });

  it("lets machine noise through: 40% slower is significant, yet below the minimum effect", () => {
    // Two quarter-octaves: 41% slower, P(slower) about 0.7, p far below 0.01.
    const comparison = compareReports(report(shifted(0)), report(shifted(2)));
    expect(comparison.latency.pSlower).toBeLessThan(1e-10);
    expect(comparison.rows[0]?.verdict).toBe("ok");
    expect(comparison.regressed).toBe(false);
  });

  it("does not judge latency on too few samples", () => {
    const few = histogram(40, [3, 10, 3]);
    const comparison = compareReports(report(few), report(histogram(52, [3, 10, 3])));
    expect(comparison.rows[0]?.verdict).toBe("info");
    expect(comparison.regressed).toBe(false);
  });

  it("holds cost figures tightly, and reports CPU, throughput and the tail without judging them", () => {
    const cost = paymentCost({
      paid: 1000,
      settlements: 1000,
      gasUsed: 60_000_000n,
      wire: { roundTrips: 2000, bytesSent: 2_000_000, bytesReceived: 1_500_000 },
      cpu: { user: 1_000_000, system: 0 },
      facilitatorCalls: 2000,
    });
    expect(cost).toEqual({
      paidRequests: 1000,
      httpRoundTripsPerPaid: 2,
      bytesSentPerPaid: 2000,
      bytesReceivedPerPaid: 1500,
      facilitatorCallsPerPaid: 2,
      jsonRpcCallsPerSettlement: null,
      gasPerSettlement: 60_000,
      cpuMsPerPaid: 1,
    });
    const worse = {
      ...cost,
      httpRoundTripsPerPaid: 3,
      bytesSentPerPaid: 2010,
      gasPerSettlement: 70_000,
      cpuMsPerPaid: 1.9,
    };
    const comparison = compareReports(
      report(shifted(0), { paymentCost: cost }),
      report(shifted(0), { paymentCost: worse, throughput: { requests: 1, paid: 1, timeline: [] } }),
    );
    const verdicts = Object.fromEntries(comparison.rows.map((r) => [r.metric, r.verdict]));
    expect(verdicts).toEqual({
      "e2e latency (median)": "ok",
      "e2e p90": "info",
      "e2e p99": "info",
      "throughput (paid)": "info",
      "error rate": "ok",
      "HTTP round trips / paid": "regressed",
      "bytes sent / paid": "ok",
      "bytes received / paid": "ok",
      "facilitator calls / paid": "ok",
      "gas / settlement": "regressed",
      "CPU / paid": "info",
    });
    expect(comparison.regressed).toBe(true);
  });

  it("flags a rise in the error rate only when it is large and not luck", () => {
    const n = total(shifted(0));
    const base = report(shifted(0), { errors: { http_503: 1 } });
    expect(compareReports(base, report(shifted(0), { errors: { http_503: 3 } })).regressed).toBe(false);
    const worse = compareReports(base, report(shifted(0), { errors: { http_503: Math.round(n * 0.05) } }));
    expect(worse.rows.find((r) => r.metric === "error rate")?.verdict).toBe("regressed");
  });

  it("notes settings the two runs differ in", () => {
    const comparison = compareReports(
      report(shifted(0)),
      report(shifted(0), { config: { agents: 50, load: { kind: "closed", durationMs: 5000 } } }),
    );
    expect(comparison.notes.join("\n")).toMatch(/agents differ: baseline 5, now 50/);
  });
});

describe("showing the comparison", () => {
  const comparison = compareReports(report(shifted(0)), report(shifted(4)), { file: "base.json" });
  const compared = { ...report(shifted(4)), comparison };

  it("prints a table of metric, baseline, now, change and verdict under the summary", () => {
    const summary = formatSummary(compared);
    expect(summary).toMatch(/against baseline base\.json .*: REGRESSED/);
    expect(summary).toMatch(/metric\s+baseline\s+now\s+change\s+verdict/);
    expect(summary).toMatch(/e2e latency \(median\) \(ms\)\s+[\d.]+\s+[\d.]+\s+\+\d+(\.\d)?%\s+REGRESSED/);
    expect(formatComparison(comparison).length).toBeGreaterThan(4);
    expect(formatSummary(report(shifted(0)))).not.toMatch(/against baseline/);
  });

  it("adds a comparison table to the HTML report", () => {
    const html = renderHtmlReport(compared);
    expect(html).toContain('<table id="comparison">');
    expect(html).toMatch(/Comparison with the baseline/);
    expect(html).toMatch(/<tr class="failed"><td>e2e latency \(median\) \(ms\)/);
    expect(renderHtmlReport(report(shifted(0)))).not.toContain('id="comparison"');
  });
});

describe("loadBaseline", () => {
  it("refuses a missing file, non-JSON, a capacity search and another scenario", async () => {
    const dir = await mkdtemp(join(tmpdir(), "baseline-"));
    const write = async (name: string, text: string) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    };
    await expect(loadBaseline(join(dir, "none.json"), "per-request")).rejects.toThrow(
      /cannot be read: no such file/,
    );
    await expect(loadBaseline(await write("bad.json", "{"), "per-request")).rejects.toThrow(/is not JSON/);
    await expect(
      loadBaseline(
        await write("cap.json", JSON.stringify({ scenario: "per-request", steps: [] })),
        "per-request",
      ),
    ).rejects.toThrow(BaselineError);
    const other = await write("other.json", JSON.stringify(report(shifted(0), { scenario: "sessions" })));
    await expect(loadBaseline(other, "per-request")).rejects.toThrow(/scenario sessions, not per-request/);
    const same = await write("same.json", JSON.stringify(report(shifted(0))));
    expect((await loadBaseline(same, "per-request")).requests).toBe(
      total(BELL.map((count) => ({ le: 0, count }))),
    );
  });
});

describe("cost counters", () => {
  it("sums the wire counts of paid requests only", () => {
    const tally = new WireTally();
    const wire = { roundTrips: 2, bytesSent: 900, bytesReceived: 700 };
    tally.add({ outcome: "paid", wire });
    tally.add({ outcome: "paid", wire });
    tally.add({ outcome: "session", wire });
    tally.add({ outcome: "paid" });
    expect({ ...tally }).toEqual({ roundTrips: 4, bytesSent: 1800, bytesReceived: 1400 });
  });

  it("reads /verify and /settle calls, and the schemes' JSON-RPC calls, from a facilitator's metrics", async () => {
    const counted = new Map([
      ["eth_call", 7],
      ["eth_sendRawTransaction", 2],
    ]);
    const scheme = { rpcCalls: { byMethod: () => counted } } as unknown as FacilitatorScheme;
    const metrics = new FacilitatorMetrics([scheme, scheme]);
    metrics.requests.inc({ route: "verify", outcome: "valid", code: "" }, 3);
    metrics.requests.inc({ route: "settle", outcome: "settled", code: "" }, 2);
    metrics.requests.inc({ route: "supported", outcome: "ok", code: "" });
    expect(await facilitatorCallCount(metrics.registry)).toEqual({ calls: 5, rpcCalls: 18 });
    counted.set("eth_call", 8);
    expect((await facilitatorCallCount(metrics.registry)).rpcCalls).toBe(20);
    expect(await metrics.registry.metrics()).toContain(
      'x402_facilitator_rpc_calls_total{method="eth_call"} 16',
    );
  });
});
