import { PHASES, type Phase } from "../load/index.ts";
import type { RunReport, ThresholdResult } from "./report.ts";

/** A threshold that cannot be read: a harness error (exit 2), not a failed run. */
export class ThresholdSyntaxError extends Error {
  override name = "ThresholdSyntaxError";
}

const OPERATORS = {
  "<": (a: number, b: number) => a < b,
  "<=": (a: number, b: number) => a <= b,
  ">": (a: number, b: number) => a > b,
  ">=": (a: number, b: number) => a >= b,
  "==": (a: number, b: number) => a === b,
  "!=": (a: number, b: number) => a !== b,
} as const;
type Operator = keyof typeof OPERATORS;

const STATS = ["p50", "p90", "p99", "p999", "max", "mean", "count"] as const;

export type Threshold = { expr: string; metric: string; operator: Operator; value: number };

const GRAMMAR = /^\s*([a-z_][\w.()]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|\/s|%)?\s*$/i;

/**
 * Parses k6-style thresholds: `e2e.p99 < 50ms`, `verify.p(99) <= 2ms`, `errors.rate < 0.001`,
 * `errors.rate < 0.1%`, `throughput.paid > 100/s`, `outcomes.paid >= 1000`, `errors.<code> == 0`, and
 * end-to-end latency of one outcome: `e2e.session.p99 < 5ms`, and an outcome's share of all requests:
 * `outcomes.session.share > 90%`.
 * Latencies compare in ms (`s` converts), rates as fractions (`%` converts).
 */
export function parseThreshold(expr: string): Threshold {
  const match = GRAMMAR.exec(expr);
  if (!match)
    throw new ThresholdSyntaxError(
      `cannot read threshold ${JSON.stringify(expr)}: expected "<metric> <op> <value>[ms|s|/s|%]"`,
    );
  const [, rawMetric = "", operator = "<", rawValue = "0", unit] = match;
  const metric = rawMetric.replace(/\.p\((\d+(?:\.\d+)?)\)$/, (_, p: string) => `.p${p.replace(".", "")}`);
  let value = Number(rawValue);
  if (unit === "s") value *= 1000;
  if (unit === "%") value /= 100;
  validateMetric(metric, expr);
  return { expr: expr.trim(), metric, operator: operator as Operator, value };
}

function validateMetric(metric: string, expr: string): void {
  const [head, tail] = metric.split(".", 2);
  const parts = metric.split(".");
  const ok =
    (parts.length === 3 && head === "e2e" && (STATS as readonly string[]).includes(parts[2] ?? "")) ||
    (parts.length === 3 && head === "outcomes" && parts[2] === "share") ||
    ((PHASES as readonly string[]).includes(head ?? "") &&
      (STATS as readonly string[]).includes(tail ?? "")) ||
    (head === "errors" && tail !== undefined) ||
    (head === "throughput" && (tail === "requests" || tail === "paid")) ||
    (head === "outcomes" && tail !== undefined) ||
    metric === "requests";
  if (!ok) {
    throw new ThresholdSyntaxError(
      `unknown metric in threshold ${JSON.stringify(expr)}: use <phase>.<stat>, e2e.<outcome>.<stat> or outcomes.<outcome>.share (phases ${PHASES.join(", ")}; stats ${STATS.join(", ")}), errors.rate, errors.count, errors.<code>, throughput.requests, throughput.paid, outcomes.<outcome>, requests`,
    );
  }
}

/** The value a metric took in a run; null when the run has no such measurement (which fails the threshold). */
export function metricValue(report: Omit<RunReport, "thresholds" | "ok">, metric: string): number | null {
  const [head = "", tail = ""] = metric.split(".", 2);
  const parts = metric.split(".");
  if (parts.length === 3 && head === "outcomes") {
    return report.requests === 0 ? null : (report.outcomes[parts[1] ?? ""] ?? 0) / report.requests;
  }
  if (parts.length === 3 && head === "e2e") {
    const summary = report.latencyByOutcome?.[parts[1] ?? ""];
    return summary ? summary[parts[2] as (typeof STATS)[number]] : null;
  }
  const errorCount = Object.values(report.errors).reduce((a, b) => a + b, 0);
  if (metric === "requests") return report.requests;
  if (head === "errors") {
    if (tail === "rate") return report.requests === 0 ? null : errorCount / report.requests;
    if (tail === "count") return errorCount;
    return report.errors[tail] ?? 0;
  }
  if (head === "throughput") return tail === "paid" ? report.throughput.paid : report.throughput.requests;
  if (head === "outcomes") return report.outcomes[tail] ?? 0;
  const summary = report.latency[head as Phase];
  return summary ? summary[tail as (typeof STATS)[number]] : null;
}

export function evaluateThresholds(
  thresholds: readonly Threshold[],
  report: Omit<RunReport, "thresholds" | "ok">,
): ThresholdResult[] {
  return thresholds.map((t) => {
    const actual = metricValue(report, t.metric);
    return { expr: t.expr, actual, ok: actual !== null && OPERATORS[t.operator](actual, t.value) };
  });
}
