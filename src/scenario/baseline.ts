import { readFile } from "node:fs/promises";
import type { Registry } from "prom-client";
import type { RunReport } from "./report.ts";

/** A histogram as the report keeps it: upper bound (ms) and count per quarter-octave bucket. */
export type Histogram = readonly { le: number; count: number }[];

/**
 * What one paid request costs, in units machine noise does not move (round trips, bytes, gas, calls) and
 * one it does (CPU). Null where the run could not measure it (the user's own server or facilitator, say).
 */
export type PaymentCost = {
  paidRequests: number;
  /** HTTP requests the agents sent per paid request: the 402, the paid retry, redirects, sign-ins. */
  httpRoundTripsPerPaid: number | null;
  /** HTTP message bytes (start line, headers, body; no transport framing) the agents sent per paid request. */
  bytesSentPerPaid: number | null;
  bytesReceivedPerPaid: number | null;
  /** Requests our facilitator answered (`/verify`, `/settle`) per paid request. */
  facilitatorCallsPerPaid: number | null;
  /** JSON-RPC calls per settlement, when the facilitator counts them. */
  jsonRpcCallsPerSettlement: number | null;
  gasPerSettlement: number | null;
  /** The harness process's CPU (agents, and the in-process server and facilitator) per paid request. */
  cpuMsPerPaid: number | null;
};

/** HTTP traffic summed over paid requests, from each `AgentResult.wire`. */
export type WireTotals = { roundTrips: number; bytesSent: number; bytesReceived: number };

/** Sums the wire counts of paid requests only: that is what the per-payment figures divide by. */
export class WireTally implements WireTotals {
  roundTrips = 0;
  bytesSent = 0;
  bytesReceived = 0;
  add(result: { outcome: string; wire?: WireTotals }): void {
    if (result.outcome !== "paid" || !result.wire) return;
    this.roundTrips += result.wire.roundTrips;
    this.bytesSent += result.wire.bytesSent;
    this.bytesReceived += result.wire.bytesReceived;
  }
}

const perUnit = (total: number | bigint | undefined | null, units: number, digits = 2): number | null => {
  if (total === undefined || total === null || units <= 0) return null;
  const scale = 10 ** digits;
  return Math.round((Number(total) / units) * scale) / scale;
};

/** The report's `paymentCost`: totals over the run divided by paid requests or settlements. */
export function paymentCost(input: {
  paid: number;
  settlements: number;
  gasUsed: bigint | string;
  wire?: WireTotals;
  /** `process.cpuUsage(atStart)` at the end of the load. */
  cpu?: { user: number; system: number };
  facilitatorCalls?: number;
  jsonRpcCalls?: number;
}): PaymentCost {
  const { paid, settlements, wire, cpu } = input;
  return {
    paidRequests: paid,
    httpRoundTripsPerPaid: perUnit(wire?.roundTrips, paid, 3),
    bytesSentPerPaid: perUnit(wire?.bytesSent, paid, 1),
    bytesReceivedPerPaid: perUnit(wire?.bytesReceived, paid, 1),
    facilitatorCallsPerPaid: perUnit(input.facilitatorCalls, paid, 3),
    jsonRpcCallsPerSettlement: perUnit(input.jsonRpcCalls, settlements, 3),
    gasPerSettlement: perUnit(BigInt(input.gasUsed), settlements, 0),
    cpuMsPerPaid: cpu ? perUnit((cpu.user + cpu.system) / 1000, paid, 3) : null,
  };
}

/**
 * What a facilitator has counted so far (its prom-client registry): `/verify` and `/settle` requests
 * answered, and JSON-RPC calls made to the chain.
 */
export async function facilitatorCallCount(registry: Registry): Promise<{ calls: number; rpcCalls: number }> {
  const sum = async (name: string, keep: (labels: Record<string, unknown>) => boolean) => {
    const metric = registry.getSingleMetric(name);
    if (!metric) return 0;
    const { values } = await metric.get();
    return values.filter((v) => keep(v.labels)).reduce((total, v) => total + v.value, 0);
  };
  return {
    calls: await sum("x402_facilitator_requests_total", (l) => l.route === "verify" || l.route === "settle"),
    rpcCalls: await sum("x402_facilitator_rpc_calls_total", () => true),
  };
}

/** A one-sided Mann–Whitney U test of "now is slower", over two binned samples. */
export type RankTest = {
  baselineCount: number;
  nowCount: number;
  /** P(a request now is slower than one in the baseline), ties counted half: 0.5 is no change. */
  superiority: number;
  z: number;
  /** One-sided: the chance of a shift this far towards slower (or, for `pFaster`, faster) by luck. */
  pSlower: number;
  pFaster: number;
};

/** Standard normal upper tail, via erfc (Numerical Recipes' Chebyshev fit `erfcc`, relative error < 1.2e-7). */
function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/**
 * Mann–Whitney U over histograms: every sample in a bucket is a tie, so ranks are mid-ranks and the
 * variance carries the tie correction. The normal approximation is exact enough at the thousands of
 * samples a run has; the answer depends on the counts only, so the same reports give the same verdict.
 */
export function rankTest(baseline: Histogram, now: Histogram): RankTest {
  const buckets = new Map<number, [number, number]>();
  for (const { le, count } of baseline) {
    const entry = buckets.get(le) ?? [0, 0];
    entry[0] += count;
    buckets.set(le, entry);
  }
  for (const { le, count } of now) {
    const entry = buckets.get(le) ?? [0, 0];
    entry[1] += count;
    buckets.set(le, entry);
  }
  let n1 = 0;
  let n2 = 0;
  for (const [a, b] of buckets.values()) {
    n1 += a;
    n2 += b;
  }
  const total = n1 + n2;
  let below = 0;
  let rankSumNow = 0;
  let ties = 0;
  for (const le of [...buckets.keys()].sort((x, y) => x - y)) {
    const [a, b] = buckets.get(le) as [number, number];
    const t = a + b;
    rankSumNow += b * (below + (t + 1) / 2);
    ties += t ** 3 - t;
    below += t;
  }
  if (n1 === 0 || n2 === 0) {
    return { baselineCount: n1, nowCount: n2, superiority: 0.5, z: 0, pSlower: 1, pFaster: 1 };
  }
  const u = rankSumNow - (n2 * (n2 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (total + 1 - ties / (total * (total - 1)));
  const sd = Math.sqrt(Math.max(variance, 0));
  // Continuity correction, one side at a time; no spread at all (every sample in one bucket) is no evidence.
  const zSlower = sd === 0 ? 0 : (u - mean - 0.5) / sd;
  const zFaster = sd === 0 ? 0 : (mean - u - 0.5) / sd;
  return {
    baselineCount: n1,
    nowCount: n2,
    superiority: round(u / (n1 * n2), 4),
    z: round(sd === 0 ? 0 : (u - mean) / sd, 3),
    pSlower: sd === 0 ? 1 : normalUpperTail(zSlower),
    pFaster: sd === 0 ? 1 : normalUpperTail(zFaster),
  };
}

/** When the comparison calls a change a regression. */
export type GateSettings = {
  /** Significance of the rank test (default 0.01). */
  alpha: number;
  /** Smallest P(now slower than baseline) that counts (default 0.75; 0.5 is no change). */
  minSuperiority: number;
  /** Smallest growth of the e2e median that counts (default 1: twice as slow). */
  minMedianShift: number;
  /** Fewest samples in each run for the test to judge (default 100). */
  minSamples: number;
  /** Growth of each cost figure that counts as a regression; absent figures are reported only. */
  costTolerance: Partial<Record<Exclude<keyof PaymentCost, "paidRequests">, number>>;
  /** Growth of the error rate, in absolute terms, that counts (default 0.005, with p < alpha). */
  minErrorRateIncrease: number;
};

export const DEFAULT_GATE: GateSettings = {
  alpha: 0.01,
  minSuperiority: 0.75,
  minMedianShift: 1,
  minSamples: 100,
  costTolerance: {
    httpRoundTripsPerPaid: 0.01,
    bytesSentPerPaid: 0.02,
    bytesReceivedPerPaid: 0.02,
    facilitatorCallsPerPaid: 0.01,
    jsonRpcCallsPerSettlement: 0.1,
    gasPerSettlement: 0.1,
    // CPU per payment swings with the machine (1.7× between two identical runs on a loaded VM): shown only.
  },
  minErrorRateIncrease: 0.005,
};

export type Verdict = "ok" | "regressed" | "improved" | "info";

export type ComparisonRow = {
  metric: string;
  unit: string;
  baseline: number | null;
  now: number | null;
  /** now / baseline - 1 (an absolute difference for rates, see `unit`), null when either is missing. */
  change: number | null;
  verdict: Verdict;
  /** What was tested, e.g. "Mann–Whitney p=2e-9, P(slower)=0.81; gate: p<0.01, P≥0.75, median ≥ +50%". */
  detail: string;
};

/** The report's `comparison`: this run against `--baseline`. */
export type Comparison = {
  baseline: { runId: string; startedAt: string; file?: string };
  settings: GateSettings;
  latency: RankTest;
  rows: ComparisonRow[];
  /** Differences between the two runs' settings that make the comparison weaker. */
  notes: string[];
  /** A row regressed: the CLI exits 1. */
  regressed: boolean;
};

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

const changeOf = (baseline: number | null, now: number | null) =>
  baseline === null || now === null || baseline === 0 ? null : round(now / baseline - 1, 4);

const formatP = (p: number) => (p < 1e-4 ? p.toExponential(0) : String(round(p, 4)));
const percent = (fraction: number) => `${round(fraction * 100, 1)}%`;

const COST_ROWS: [Exclude<keyof PaymentCost, "paidRequests">, string, string][] = [
  ["httpRoundTripsPerPaid", "HTTP round trips / paid", "requests"],
  ["bytesSentPerPaid", "bytes sent / paid", "B"],
  ["bytesReceivedPerPaid", "bytes received / paid", "B"],
  ["facilitatorCallsPerPaid", "facilitator calls / paid", "requests"],
  ["jsonRpcCallsPerSettlement", "JSON-RPC calls / settlement", "calls"],
  ["gasPerSettlement", "gas / settlement", "gas"],
  ["cpuMsPerPaid", "CPU / paid", "ms"],
];

/** The error rate with its two-proportion test: a rise needs to be both large and not luck. */
function errorRow(baseline: RunReport, now: RunReport, settings: GateSettings): ComparisonRow {
  const errorsOf = (r: RunReport) => Object.values(r.errors).reduce((a, b) => a + b, 0);
  const e1 = errorsOf(baseline);
  const e2 = errorsOf(now);
  const n1 = baseline.requests;
  const n2 = now.requests;
  const r1 = n1 > 0 ? e1 / n1 : null;
  const r2 = n2 > 0 ? e2 / n2 : null;
  if (r1 === null || r2 === null) {
    return {
      metric: "error rate",
      unit: "%",
      baseline: r1,
      now: r2,
      change: null,
      verdict: "info",
      detail: "",
    };
  }
  const pooled = (e1 + e2) / (n1 + n2);
  const sd = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  const p = sd === 0 ? 1 : normalUpperTail((r2 - r1) / sd);
  const increase = r2 - r1;
  const regressed = p < settings.alpha && increase >= settings.minErrorRateIncrease;
  return {
    metric: "error rate",
    unit: "%",
    baseline: round(r1, 6),
    now: round(r2, 6),
    change: round(increase, 6),
    verdict: regressed ? "regressed" : "ok",
    detail: `two-proportion p=${formatP(p)}; gate: +${percent(settings.minErrorRateIncrease)} and p<${settings.alpha}`,
  };
}

/** Settings the two runs differ in that change what latency means (agents, load, profile, target). */
function configNotes(baseline: RunReport, now: RunReport): string[] {
  const notes: string[] = [];
  const pick = (r: RunReport) => ({
    agents: r.config.agents,
    load: r.config.load,
    devnet: { ...(r.config.devnet as object), rpcUrl: undefined },
  });
  for (const [key, value] of Object.entries(pick(baseline))) {
    const other = pick(now)[key as keyof ReturnType<typeof pick>];
    if (JSON.stringify(value) !== JSON.stringify(other)) {
      notes.push(`${key} differ: baseline ${JSON.stringify(value)}, now ${JSON.stringify(other)}`);
    }
  }
  if (baseline.interrupted) notes.push("the baseline run was interrupted");
  if (!baseline.ok) notes.push("the baseline run did not pass its own checks");
  return notes;
}

/**
 * This run against an earlier report of the same scenario. Latency is judged on the whole e2e
 * distribution: a regression needs the rank test to say "slower" (p < alpha), most requests to be slower
 * (P(slower) ≥ minSuperiority) and the median to have grown by minMedianShift, because shared machines
 * move absolute latency by tens of percent between identical runs. Cost figures that noise does not move
 * are held to their `costTolerance`; p50, p99 and throughput are shown, not judged.
 */
export function compareReports(
  baseline: RunReport,
  now: RunReport,
  options: Partial<GateSettings> & { file?: string } = {},
): Comparison {
  const { file, ...overrides } = options;
  const settings: GateSettings = {
    ...DEFAULT_GATE,
    ...overrides,
    costTolerance: { ...DEFAULT_GATE.costTolerance, ...overrides.costTolerance },
  };
  const test = rankTest(baseline.distribution, now.distribution);
  const b50 = baseline.latency.e2e?.p50 ?? null;
  const n50 = now.latency.e2e?.p50 ?? null;
  const shift = changeOf(b50, n50);
  const enough = test.baselineCount >= settings.minSamples && test.nowCount >= settings.minSamples;
  const slower =
    enough &&
    test.pSlower < settings.alpha &&
    test.superiority >= settings.minSuperiority &&
    shift !== null &&
    shift >= settings.minMedianShift;
  const faster =
    enough &&
    test.pFaster < settings.alpha &&
    test.superiority <= 1 - settings.minSuperiority &&
    shift !== null &&
    shift <= 1 / (1 + settings.minMedianShift) - 1;
  const rows: ComparisonRow[] = [
    {
      metric: "e2e latency (median)",
      unit: "ms",
      baseline: b50,
      now: n50,
      change: shift,
      verdict: !enough ? "info" : slower ? "regressed" : faster ? "improved" : "ok",
      detail: enough
        ? `Mann–Whitney p=${formatP(test.pSlower)}, P(slower)=${test.superiority}; gate: p<${settings.alpha}, P(slower)≥${settings.minSuperiority}, median ≥ +${percent(settings.minMedianShift)}`
        : `too few samples to judge (${test.baselineCount} and ${test.nowCount}, fewer than ${settings.minSamples})`,
    },
  ];
  for (const stat of ["p90", "p99"] as const) {
    const b = baseline.latency.e2e?.[stat] ?? null;
    const n = now.latency.e2e?.[stat] ?? null;
    rows.push({
      metric: `e2e ${stat}`,
      unit: "ms",
      baseline: b,
      now: n,
      change: changeOf(b, n),
      verdict: "info",
      detail: "",
    });
  }
  rows.push({
    metric: "throughput (paid)",
    unit: "/s",
    baseline: baseline.throughput.paid,
    now: now.throughput.paid,
    change: changeOf(baseline.throughput.paid, now.throughput.paid),
    verdict: "info",
    detail: "",
  });
  rows.push(errorRow(baseline, now, settings));
  for (const [key, metric, unit] of COST_ROWS) {
    const b = baseline.paymentCost?.[key] ?? null;
    const n = now.paymentCost?.[key] ?? null;
    if (b === null && n === null) continue;
    const change = changeOf(b, n);
    const tolerance = settings.costTolerance[key];
    const verdict: Verdict =
      tolerance === undefined || change === null
        ? "info"
        : change > tolerance
          ? "regressed"
          : change < -tolerance
            ? "improved"
            : "ok";
    rows.push({
      metric,
      unit,
      baseline: b,
      now: n,
      change,
      verdict,
      detail: tolerance === undefined ? "" : `gate: ≤ +${percent(tolerance)}`,
    });
  }
  return {
    baseline: { runId: baseline.runId, startedAt: baseline.startedAt, ...(file ? { file } : {}) },
    settings,
    latency: test,
    rows,
    notes: configNotes(baseline, now),
    regressed: rows.some((r) => r.verdict === "regressed"),
  };
}

/** The baseline file is missing, unreadable, not a run report, or of another scenario: exit 2. */
export class BaselineError extends Error {
  override name = "BaselineError";
}

/** Reads a `--json` report to compare against, refusing one of another scenario or another shape. */
export async function loadBaseline(path: string, scenario: string): Promise<RunReport> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new BaselineError(
      `--baseline ${path} cannot be read: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BaselineError(`--baseline ${path} is not JSON`);
  }
  const report = parsed as Partial<RunReport> | null;
  if (
    typeof report !== "object" ||
    report === null ||
    typeof report.scenario !== "string" ||
    !Array.isArray(report.distribution) ||
    typeof report.latency !== "object" ||
    typeof report.throughput !== "object" ||
    typeof report.requests !== "number"
  ) {
    throw new BaselineError(
      `--baseline ${path} is not a run report (write one with --json; a --find-capacity report cannot be compared)`,
    );
  }
  if (report.scenario !== scenario) {
    throw new BaselineError(
      `--baseline ${path} is a report of scenario ${report.scenario}, not ${scenario}: compare runs of the same scenario`,
    );
  }
  return report as RunReport;
}

const VERDICT_WORDS: Record<Verdict, string> = {
  ok: "ok",
  regressed: "REGRESSED",
  improved: "improved",
  info: "-",
};

const cell = (value: number | null, unit: string) =>
  value === null ? "-" : unit === "%" ? percent(value) : `${round(value, 2)}`;

const changeCell = (row: ComparisonRow) =>
  row.change === null
    ? "-"
    : row.unit === "%"
      ? `${row.change >= 0 ? "+" : ""}${round(row.change * 100, 2)} pt`
      : `${row.change >= 0 ? "+" : ""}${percent(row.change)}`;

/** The comparison as terminal lines: a table of metric, baseline, now, change and verdict. */
export function formatComparison(comparison: Comparison): string[] {
  const lines = [
    "",
    `  against baseline ${comparison.baseline.file ?? comparison.baseline.runId} (${comparison.baseline.startedAt}): ${comparison.regressed ? "REGRESSED" : "no regression"}`,
    `    ${"metric".padEnd(36)}${["baseline", "now", "change"].map((h) => h.padStart(11)).join("")}  verdict`,
  ];
  for (const row of comparison.rows) {
    const name = `${row.metric}${row.unit === "%" ? "" : ` (${row.unit})`}`;
    lines.push(
      `    ${name.padEnd(36)}${[cell(row.baseline, row.unit), cell(row.now, row.unit), changeCell(row)].map((v) => v.padStart(11)).join("")}  ${VERDICT_WORDS[row.verdict]}${row.detail ? `  (${row.detail})` : ""}`,
    );
  }
  for (const note of comparison.notes) lines.push(`    note: ${note}`);
  return lines;
}

/** The change column's text, shared with the HTML report. */
export const comparisonChange = changeCell;
export const comparisonValue = cell;
