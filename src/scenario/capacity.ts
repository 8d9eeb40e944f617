import type { ScenarioDefinition } from "./define.ts";
import type { RunReport } from "./report.ts";
import { type RunOverrides, runScenario } from "./runner.ts";

export type CapacityStep = {
  rate: number;
  achieved: number;
  p50: number | null;
  p99: number | null;
  ok: boolean;
  failed: string[];
};
export type CapacityResult = { highestRate: number | null; steps: CapacityStep[]; lastReport: RunReport };

export type CapacityOptions = Omit<RunOverrides, "rate" | "durationMs"> & {
  startRate?: number;
  /** Each step's rate is the previous one times this. */
  factor?: number;
  stepDurationMs?: number;
  maxSteps?: number;
};

/**
 * Capacity planning: runs the scenario as an open model at rising arrival rates (each step on a fresh
 * stack, so steps do not inherit a long chain) until a threshold or invariant fails, and reports the
 * highest rate that held together with the latency curve.
 */
export async function findCapacity(
  scenario: ScenarioDefinition,
  options: CapacityOptions = {},
): Promise<CapacityResult> {
  const factor = options.factor ?? 1.5;
  const steps: CapacityStep[] = [];
  let rate = options.startRate ?? 20;
  let highestRate: number | null = null;
  let lastReport: RunReport | undefined;
  for (let step = 0; step < (options.maxSteps ?? 12); step++) {
    const report = await runScenario(scenario, {
      ...options,
      rate,
      durationMs: options.stepDurationMs ?? 5_000,
    });
    lastReport = report;
    const failed = [
      ...report.thresholds.filter((t) => !t.ok).map((t) => t.expr),
      ...report.invariants.filter((i) => !i.ok).map((i) => i.name),
    ];
    steps.push({
      rate,
      achieved: report.throughput.requests,
      p50: report.latency.e2e?.p50 ?? null,
      p99: report.latency.e2e?.p99 ?? null,
      ok: report.ok,
      failed,
    });
    if (!report.ok || options.signal?.aborted) break;
    highestRate = rate;
    rate = Math.ceil(rate * factor);
  }
  if (!lastReport) throw new Error("findCapacity ran no step");
  return { highestRate, steps, lastReport };
}
