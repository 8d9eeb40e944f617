import { setTimeout as delay } from "node:timers/promises";
import type { FaultPlan } from "./plan.ts";

/** Sets `plan` at `atMs` after the schedule starts. */
export type ChaosStep = { atMs: number; plan: FaultPlan };

/** Anything whose faults can be switched: a fault proxy, or several behind one function. */
export type ChaosTarget = { setFaults(plan: FaultPlan): Promise<void> };

export type ChaosResult = { applied: number; aborted: boolean };

/**
 * Applies each step's plan at its time, in time order, and returns after the last one (or at once when
 * `signal` aborts), so a schedule is bounded by its last `atMs`. The last plan stays in force: end a
 * schedule with `{ atMs, plan: {} }` to heal. A failing `setFaults` ends the run with its error.
 */
export async function runChaos(
  target: ChaosTarget,
  schedule: readonly ChaosStep[],
  signal?: AbortSignal,
): Promise<ChaosResult> {
  for (const step of schedule)
    if (!(Number.isFinite(step.atMs) && step.atMs >= 0))
      throw new RangeError(`Chaos step times must be finite and >= 0 ms, got ${step.atMs}.`);
  const steps = [...schedule].sort((a, b) => a.atMs - b.atMs);
  const started = performance.now();
  let applied = 0;
  for (const step of steps) {
    const wait = started + step.atMs - performance.now();
    if (wait > 0) await delay(wait, undefined, { signal }).catch(() => undefined);
    if (signal?.aborted) return { applied, aborted: true };
    await target.setFaults(step.plan);
    applied += 1;
  }
  return { applied, aborted: false };
}
