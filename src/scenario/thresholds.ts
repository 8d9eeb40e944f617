import { type AgentOutcome, POLICY_REASONS } from "../agents/index.ts";
import { PHASES, type Phase } from "../load/index.ts";
import { isX402ErrorCode } from "../protocol/index.ts";
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

const GRAMMAR = /^\s*([a-z_][\w.()]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|\/s|%|MB)?\s*$/i;

/**
 * Parses k6-style thresholds: `e2e.p99 < 50ms`, `verify.p(99) <= 2ms`, `errors.rate < 0.001`,
 * `errors.rate < 0.1%`, `throughput.paid > 100/s`, `outcomes.paid >= 1000`, `errors.<code> == 0`, and
 * end-to-end latency of one outcome: `e2e.session.p99 < 5ms`, and an outcome's share of all requests:
 * `outcomes.session.share > 90%`; steady state: `drift.e2e.p99 < 20%` (the last window's p99 against the
 * first's), `drift.throughput < 10%` (its drop), `memory.harness.growth < 200MB`, `memory.anvil.growthPerHour < 2000MB`.
 * Latencies compare in ms (`s` converts), rates and drift as fractions (`%` converts), memory in MB.
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

/** Every outcome an agent's request can end in (checked against the agent's type below). */
export const OUTCOMES = ["paid", "free", "session", "refused_by_policy", "payment_failed", "error"] as const;
// A new outcome in the agent must be named here too, or thresholds would refuse it.
type MissingOutcome = Exclude<AgentOutcome, (typeof OUTCOMES)[number]>;
const outcomesComplete: MissingOutcome extends never ? true : MissingOutcome = true;
void outcomesComplete;

/** Codes the harness itself records, besides x402's and the policy's. */
const HARNESS_CODES = ["settlement_failed", "unexpected_error", "interrupted"];
/** Transport failures: Node's `E…` codes, undici's `UND_ERR_…` codes, and error names (`TimeoutError`). */
const TRANSPORT_CODE = /^(E[A-Z0-9_]+|UND_ERR_[A-Z0-9_]+|[A-Z][A-Za-z]*Error)$/;

function isKnownErrorCode(code: string): boolean {
  return (
    isX402ErrorCode(code) ||
    (POLICY_REASONS as readonly string[]).includes(code) ||
    HARNESS_CODES.includes(code) ||
    /^http_[1-5]\d\d$/.test(code) ||
    TRANSPORT_CODE.test(code)
  );
}

const isOutcome = (name: string | undefined) => (OUTCOMES as readonly string[]).includes(name ?? "");
const isStat = (name: string | undefined) => (STATS as readonly string[]).includes(name ?? "");

/**
 * Why `metric` names nothing a run measures, or undefined when it is valid. A misspelt name must not
 * pass silently: `outcomes.bogus == 0` would hold on every run.
 */
function unknownMetric(metric: string): string | undefined {
  const [head = "", second, third, ...rest] = metric.split(".");
  if (rest.length > 0) return "too many parts";
  if (metric === "requests") return undefined;
  if ((PHASES as readonly string[]).includes(head)) {
    if (third === undefined && isStat(second)) return undefined;
    if (head === "e2e" && isOutcome(second) && isStat(third)) return undefined;
    if (head === "e2e" && third !== undefined && !isOutcome(second))
      return `unknown outcome ${JSON.stringify(second)}; outcomes are ${OUTCOMES.join(", ")}`;
    return `a latency takes one of ${STATS.join(", ")}: ${head}.<stat>${head === "e2e" ? " or e2e.<outcome>.<stat>" : ""}`;
  }
  if (head === "outcomes") {
    if (!isOutcome(second))
      return `unknown outcome ${JSON.stringify(second ?? "")}; outcomes are ${OUTCOMES.join(", ")}`;
    return third === undefined || third === "share"
      ? undefined
      : "use outcomes.<outcome> or outcomes.<outcome>.share";
  }
  if (head === "errors") {
    if (third !== undefined || second === undefined) return "use errors.rate, errors.count or errors.<code>";
    if (second === "rate" || second === "count" || isKnownErrorCode(second)) return undefined;
    return `unknown error code ${JSON.stringify(second)}; errors.<code> takes an x402 error code (e.g. invalid_exact_evm_signature), a policy reason (${POLICY_REASONS.join(", ")}), http_<status>, or a transport code (ECONNRESET, UND_ERR_HEADERS_TIMEOUT, …)`;
  }
  if (head === "throughput") {
    return third === undefined && (second === "requests" || second === "paid")
      ? undefined
      : "use throughput.requests or throughput.paid";
  }
  if (head === "drift") {
    return metric === "drift.throughput" || metric === "drift.e2e.p50" || metric === "drift.e2e.p99"
      ? undefined
      : "use drift.e2e.p50, drift.e2e.p99 or drift.throughput";
  }
  if (head === "memory") {
    return (second === "harness" || second === "anvil") &&
      (third === "growth" || third === "growthPerHour" || third === "rss")
      ? undefined
      : "use memory.<harness|anvil>.rss, memory.<harness|anvil>.growth or memory.<harness|anvil>.growthPerHour";
  }
  return "no such metric";
}

function validateMetric(metric: string, expr: string): void {
  const why = unknownMetric(metric);
  if (why === undefined) return;
  throw new ThresholdSyntaxError(
    `unknown metric in threshold ${JSON.stringify(expr)} (${why}). Valid names: <phase>.<stat> (phases ${PHASES.join(", ")}; stats ${STATS.join(", ")}), e2e.<outcome>.<stat>, outcomes.<outcome>, outcomes.<outcome>.share (outcomes ${OUTCOMES.join(", ")}), errors.rate, errors.count, errors.<code>, throughput.requests, throughput.paid, drift.e2e.p50, drift.e2e.p99, drift.throughput, memory.harness.rss, memory.harness.growth, memory.harness.growthPerHour, memory.anvil.rss, memory.anvil.growth, memory.anvil.growthPerHour, requests`,
  );
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
  if (metric === "requests") return report.requests;
  if (head === "errors") {
    const errorCount = Object.values(report.errors).reduce((a, b) => a + b, 0);
    if (tail === "rate") return report.requests === 0 ? null : errorCount / report.requests;
    if (tail === "count") return errorCount;
    return report.errors[tail] ?? 0;
  }
  if (head === "throughput") return tail === "paid" ? report.throughput.paid : report.throughput.requests;
  if (head === "outcomes") return report.outcomes[tail] ?? 0;
  if (head === "drift") {
    const { drift } = report.steadyState;
    return metric === "drift.throughput" ? drift.throughput : drift.e2e[parts[2] === "p50" ? "p50" : "p99"];
  }
  if (head === "memory") {
    // No anvil figures (an attached chain, off Linux) is no measurement, which fails the threshold.
    const figures = report.steadyState.memory[parts[1] === "anvil" ? "anvil" : "harness"];
    if (!figures) return null;
    return parts[2] === "rss"
      ? figures.endMb
      : parts[2] === "growth"
        ? figures.growthMb
        : figures.growthPerHourMb;
  }
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
