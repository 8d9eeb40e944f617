import { DEFAULT_MAX_IN_FLIGHT, type LoadModel, PHASES } from "../../load/index.ts";
import type { Threshold } from "../thresholds.ts";
import { type ArtilleryJob, JOB_VARIABLE, METRIC, VU_FUNCTION } from "./job.ts";

/** One of Artillery's load phases (seconds, arrivals per second). */
export type ArtilleryPhase = {
  name: string;
  duration: number;
  arrivalRate: number;
  rampTo?: number;
  maxVusers?: number;
  mode?: "poisson";
};

/** The script `artillery run` reads (JSON is YAML): the job, the phases, and `ensure` for the thresholds. */
export type ArtilleryScript = {
  config: {
    target: string;
    phases: ArtilleryPhase[];
    processor: string;
    variables: Record<string, string>;
    plugins: { ensure: Record<string, never> };
    ensure: { conditions: { expression: string; strict: boolean }[] };
  };
  scenarios: { name: string; flow: { function: string }[] }[];
};

const wholeSeconds = (ms: number) => Math.max(1, Math.round(ms / 1000));

/**
 * A load model as Artillery phases. A closed model's agents arrive within its first second, one virtual
 * user each (evenly spaced: a Poisson second would start a random number of them), and loop for its duration; an open model's stages become constant or ramping arrival rates,
 * each arrival one request, at most `maxInFlight` at once (Artillery skips arrivals beyond `maxVusers`
 * and counts them, as the in-process runner drops them). Artillery divides each phase's rate among its
 * local worker threads.
 */
export function artilleryPhases(model: LoadModel, agents: number): ArtilleryPhase[] {
  if (model.kind === "closed") return [{ name: "agents", duration: 1, arrivalRate: agents }];
  const maxVusers = model.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  let start = model.startRate ?? model.stages[0]?.rate ?? 0;
  return model.stages.map((stage, i) => {
    const phase: ArtilleryPhase = {
      name: `stage ${i + 1}`,
      duration: wholeSeconds(stage.durationMs),
      arrivalRate: start,
      // Constant stages arrive as a Poisson process, as the in-process runner's do; Artillery spaces a
      // ramp's arrivals evenly, whatever the mode.
      ...(stage.rate === start ? { mode: "poisson" as const } : { rampTo: stage.rate }),
      maxVusers,
    };
    start = stage.rate;
    return phase;
  });
}

/** A threshold's metric as an expression over the workers' metrics; undefined when Artillery has no such figure. */
function expressionOf(metric: string): { expression: string; micros: boolean } | undefined {
  const [head = "", second, third] = metric.split(".");
  if (metric === "requests") return { expression: METRIC.requests, micros: false };
  if ((PHASES as readonly string[]).includes(head)) {
    const stat = third ?? second ?? "";
    const name = third === undefined ? METRIC.phase(head) : METRIC.e2eOf(second ?? "");
    return { expression: `${name}.${stat}`, micros: stat !== "count" };
  }
  if (head === "outcomes" && second !== undefined) {
    const counter = METRIC.outcome(second);
    return { expression: third === "share" ? `${counter} / ${METRIC.requests}` : counter, micros: false };
  }
  if (head === "errors" && second !== undefined) {
    if (second === "count") return { expression: METRIC.errors, micros: false };
    if (second === "rate") return { expression: `${METRIC.errors} / ${METRIC.requests}`, micros: false };
    return { expression: METRIC.error(second), micros: false };
  }
  return undefined;
}

/**
 * The scenario's thresholds as `ensure` conditions, so that a cloud run Artillery judges alone fails as
 * the harness would; latencies go in microseconds, as the workers emit them. Throughput, drift and memory
 * need the run's duration or the harness's own samples: those are judged only when the harness turns
 * the report into its own (`unmapped`).
 */
export function ensureConditions(thresholds: readonly Threshold[]): {
  conditions: { expression: string; strict: boolean }[];
  counters: string[];
  unmapped: string[];
} {
  const conditions: { expression: string; strict: boolean }[] = [];
  const counters = new Set<string>([METRIC.requests, METRIC.errors]);
  const unmapped: string[] = [];
  for (const threshold of thresholds) {
    const mapped = expressionOf(threshold.metric);
    if (!mapped) {
      unmapped.push(threshold.expr);
      continue;
    }
    for (const name of mapped.expression.split(" / "))
      if (!/\.(p\d+|max|mean|count)$/.test(name)) counters.add(name);
    const value = mapped.micros ? threshold.value * 1000 : threshold.value;
    conditions.push({ expression: `${mapped.expression} ${threshold.operator} ${value}`, strict: true });
  }
  return { conditions, counters: [...counters], unmapped };
}

/** The script for a job: one scenario whose only step is the processor's virtual user. */
export function artilleryScript(
  job: ArtilleryJob,
  conditions: ArtilleryScript["config"]["ensure"]["conditions"],
  processorFile: string,
): ArtilleryScript {
  return {
    config: {
      target: new URL(job.server.url).origin,
      phases: artilleryPhases(job.spec.model, job.spec.agents),
      processor: `./${processorFile}`,
      variables: { [JOB_VARIABLE]: JSON.stringify(job) },
      plugins: { ensure: {} },
      ensure: { conditions },
    },
    scenarios: [{ name: job.spec.scenario, flow: [{ function: VU_FUNCTION }] }],
  };
}
