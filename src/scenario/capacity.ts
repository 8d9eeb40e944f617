import type { ScenarioDefinition } from "./define.ts";
import type { InvariantResult, RunReport, ThresholdResult } from "./report.ts";
import { type RunOverrides, runScenario } from "./runner.ts";
import { metricValue } from "./thresholds.ts";
import { optionalPositive, ScenarioInputError } from "./validate.ts";

/**
 * One step of the search: what its run measured at one offered rate. A summary rather than the run's report,
 * so a long search does not hold every step's timeline and histograms.
 */
export type CapacityStep = {
  /** The offered arrival rate, per second. */
  rate: number;
  /** Requests completed per second. */
  achieved: number;
  /** Paid requests per second. */
  paid: number;
  requests: number;
  /** Requests that ended in an error. */
  errors: number;
  durationMs: number;
  /** End-to-end latency in ms; null when no request finished. */
  p50: number | null;
  p99: number | null;
  ok: boolean;
  /** What failed, by name: threshold expressions, then invariant and case names. Empty when the step held. */
  failed: string[];
  /** Every threshold with the value it was judged on, so a failure can be read with its actual. */
  thresholds: ThresholdResult[];
  /** The invariants that did not hold, with their detail. */
  brokenInvariants: InvariantResult[];
};

/** How the search ended: at a step that failed, after the last step it was allowed, or stopped from outside. */
export type CapacityStop = "failure" | "max-steps" | "interrupted";

/**
 * The whole search. Plain JSON data (no bigint, no class), so `JSON.stringify` writes it as it is and
 * `JSON.parse` gives it back.
 */
export type CapacityResult = {
  scenario: string;
  description: string;
  startedAt: string;
  /** How the rates were chosen. */
  settings: { startRate: number; factor: number; stepDurationMs: number; maxSteps: number };
  /** The highest offered rate whose step held; null when none did. */
  highestRate: number | null;
  stoppedBy: CapacityStop;
  /** In the order they ran, so by rising rate. */
  steps: CapacityStep[];
};

export type CapacityOptions = Omit<RunOverrides, "rate" | "durationMs"> & {
  startRate?: number;
  /** Each step's rate is the previous one times this. */
  factor?: number;
  stepDurationMs?: number;
  maxSteps?: number;
};

function summarizeStep(rate: number, report: RunReport): CapacityStep {
  const brokenInvariants = report.invariants.filter((i) => !i.ok);
  const failed = [
    ...report.thresholds.filter((t) => !t.ok).map((t) => t.expr),
    ...brokenInvariants.map((i) => i.name),
    ...(report.cases ?? []).filter((c) => !c.ok).map((c) => c.name),
    ...(report.error ? [`${report.error.step} failed: ${report.error.message}`] : []),
    // A step cut short measured less than it was asked to: whatever its figures, it does not hold the rate.
    ...(report.interrupted ? ["interrupted"] : []),
  ];
  if (!report.ok && failed.length === 0) failed.push("the run failed");
  return {
    rate,
    achieved: report.throughput.requests,
    paid: report.throughput.paid,
    requests: report.requests,
    errors: metricValue(report, "errors.count") ?? 0,
    durationMs: report.durationMs,
    p50: report.latency.e2e?.p50 ?? null,
    p99: report.latency.e2e?.p99 ?? null,
    ok: report.ok,
    failed,
    thresholds: report.thresholds,
    brokenInvariants,
  };
}

/**
 * Capacity planning: runs the scenario as an open model at rising arrival rates (each step on a fresh
 * stack, so steps do not inherit a long chain) until a threshold or invariant fails, and reports the
 * highest rate that held together with the latency curve.
 */
export async function findCapacity(
  scenario: ScenarioDefinition,
  options: CapacityOptions = {},
): Promise<CapacityResult> {
  const settings = {
    startRate: optionalPositive("startRate", options.startRate, false) ?? 20,
    factor: optionalPositive("factor", options.factor, false) ?? 1.5,
    stepDurationMs: optionalPositive("stepDurationMs", options.stepDurationMs, false) ?? 5_000,
    maxSteps: optionalPositive("maxSteps", options.maxSteps, true) ?? 12,
  };
  // Math.ceil would then keep the rate where it is, and the search would run the same step again and again.
  if (settings.factor <= 1) throw new ScenarioInputError(`factor must be above 1, got ${settings.factor}`);
  const startedAt = new Date().toISOString();
  const steps: CapacityStep[] = [];
  let rate = settings.startRate;
  let highestRate: number | null = null;
  let stoppedBy: CapacityStop = "max-steps";
  for (let step = 0; step < settings.maxSteps; step++) {
    const report = await runScenario(scenario, { ...options, rate, durationMs: settings.stepDurationMs });
    steps.push(summarizeStep(rate, report));
    if (!report.ok) {
      stoppedBy = report.interrupted ? "interrupted" : "failure";
      break;
    }
    highestRate = rate;
    // Stopped after a step finished whole: that step held, but the search goes no further.
    if (options.signal?.aborted) {
      stoppedBy = "interrupted";
      break;
    }
    rate = Math.ceil(rate * settings.factor);
  }
  if (steps.length === 0) throw new Error("findCapacity ran no step");
  return {
    scenario: scenario.name,
    description: scenario.description,
    startedAt,
    settings,
    highestRate,
    stoppedBy,
    steps,
  };
}

/** The search's outcome in words; never "none/s". */
export function capacityHeadline(result: CapacityResult): string {
  if (result.highestRate !== null) return `highest rate that held ${result.highestRate}/s`;
  const lowest = result.steps[0]?.rate;
  return lowest === undefined ? "no step ran" : `no rate held; the lowest tried was ${lowest}/s`;
}

/** The search as a terminal table: one line per step with its rate, achieved rate, latency and verdict. */
export function formatCapacity(result: CapacityResult): string {
  const cell = (value: number | null) => String(value ?? "-").padStart(10);
  return [
    `${result.scenario}: ${capacityHeadline(result)}`,
    "      rate  achieved    p50 ms    p99 ms",
    ...result.steps.map(
      (s) =>
        `${cell(s.rate)}${cell(s.achieved)}${cell(s.p50)}${cell(s.p99)}  ${s.ok ? "held" : `failed: ${s.failed.join("; ")}`}`,
    ),
    "",
  ].join("\n");
}
