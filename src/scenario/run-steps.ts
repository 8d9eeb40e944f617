import type { Devnet } from "../chain/index.ts";
import { describeModel, type LoadMeasurements, type LoadModel } from "../load/index.ts";
import type { CostOptions } from "./cost.ts";
import type { MeasuredReport, RunReport } from "./report.ts";
import { type RunSample, steadyState } from "./steady-state.ts";
import type { RunTarget } from "./target.ts";
import { evaluateThresholds, type Threshold } from "./thresholds.ts";

/** A post-run step that threw: the report keeps what was measured and names the step. */
export type RunError = { step: string; message: string };

/**
 * How long one post-run step (a read of the chain) may take. Paged reads of a 250,000-settlement run take
 * well under a minute; a chain that stopped answering would otherwise hold the report for as long as each
 * of its pages times out.
 */
const STEP_DEADLINE_MS = 180_000;
/** The user asked to stop: they want the report now. */
const INTERRUPTED_STEP_DEADLINE_MS = 15_000;

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The steps after the load, each named, so that one that throws leaves a report saying which, not a stack
 * trace. A chain that stopped answering must not hold the report back either: each step has a deadline.
 * After the first failure the remaining steps are skipped.
 */
export class PostRunSteps {
  error: RunError | undefined;

  private readonly deadlineMs: number;

  /** `deadlineMs`: each step's (default 180 s, 15 s once the run was interrupted). */
  constructor(deadlineMs: number | undefined, interrupted: boolean) {
    this.deadlineMs = deadlineMs ?? (interrupted ? INTERRUPTED_STEP_DEADLINE_MS : STEP_DEADLINE_MS);
  }

  async step<T>(name: string, run: () => Promise<T>): Promise<T | undefined> {
    if (this.error) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.deadlineMs / 1000} s (is the chain still up?)`)),
        this.deadlineMs,
      );
    });
    try {
      return await Promise.race([run(), deadline]);
    } catch (thrown) {
      this.error = { step: name, message: messageOf(thrown) };
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

/** What the load measured, in the report's fields, whichever engine measured it. */
export function measuredFigures(
  metrics: LoadMeasurements,
  durationMs: number,
  samples: readonly RunSample[],
  windowSeconds?: number,
): Pick<
  MeasuredReport,
  | "requests"
  | "outcomes"
  | "latency"
  | "latencyByOutcome"
  | "latencyByPath"
  | "throughput"
  | "distribution"
  | "steadyState"
  | "errors"
> {
  const seconds = durationMs / 1000;
  const latencyByPath = metrics.latencyByPath();
  return {
    requests: metrics.requests,
    outcomes: metrics.outcomes,
    latency: metrics.latency(),
    latencyByOutcome: metrics.latencyByOutcome(),
    ...(Object.keys(latencyByPath).length > 0 ? { latencyByPath } : {}),
    throughput: {
      requests: round(metrics.requests / seconds),
      paid: round((metrics.outcomes.paid ?? 0) / seconds),
      timeline: metrics.timeline(),
    },
    distribution: metrics.distribution(),
    steadyState: steadyState(metrics, durationMs, samples, windowSeconds),
    errors: metrics.errors,
  };
}

/**
 * A run's cost options on its target. The cost model prices EIP-3009 settlements, which our facilitator's
 * `exact` keys send; a user's facilitator runs relayers we cannot count, and the prices' default stands in.
 */
export const costOptionsOn = (target: RunTarget, cost: CostOptions = {}): CostOptions => ({
  ...cost,
  relayers: cost.relayers ?? (target.stack?.relayerSets.exact.length || undefined),
});

/** The devnet as the report's config names it. */
export function devnetConfig(devnet: Devnet): Record<string, unknown> {
  return {
    network: devnet.network,
    chainId: devnet.chainId,
    usdc: devnet.usdc.address,
    profile: devnet.profile,
    hardfork: devnet.hardfork,
    history: devnet.history,
    stateRoots: devnet.stateRoots,
    mode: devnet.mode,
    rpcUrl: devnet.rpcUrl,
    blockTime: devnet.blockTime,
  };
}

/** What ran, in words: agents, cases, the load model after overrides, and the engine when not in process. */
export function describeRun(
  agents: number,
  model: LoadModel | undefined,
  cases: number,
  engine?: string,
): string {
  return [
    `${agents} agent${agents === 1 ? "" : "s"}`,
    cases > 0 ? `${cases} case${cases === 1 ? "" : "s"}` : undefined,
    model ? describeModel(model) : undefined,
    engine,
  ]
    .filter((part) => part !== undefined)
    .join("; ");
}

/**
 * The report with its thresholds evaluated and its verdict: ok only when every threshold, invariant and
 * case held, no step failed and the run was not interrupted.
 */
export function judged(
  partial: Omit<RunReport, "thresholds" | "ok">,
  thresholds: readonly Threshold[],
): RunReport {
  const results = evaluateThresholds([...thresholds], partial);
  return {
    ...partial,
    thresholds: results,
    ok:
      !partial.interrupted &&
      partial.error === undefined &&
      results.every((t) => t.ok) &&
      partial.invariants.every((i) => i.ok) &&
      (partial.cases ?? []).every((c) => c.ok),
  };
}
