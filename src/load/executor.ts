import { setTimeout as delay } from "node:timers/promises";
import { arrivals, type LoadModel, modelDurationMs, seededRandom, thinkTime } from "./models.ts";

export type TaskContext = { agent: number; iteration: number };
export type Task = (context: TaskContext) => Promise<void>;

export type ExecutionOptions = {
  /** How many agents share the load; an open model hands arrivals to them in turn. */
  agents: number;
  seed: number;
  task: Task;
  /** Stops issuing new work (a Ctrl-C, a failed run); work in flight is still awaited. */
  signal?: AbortSignal;
};

export type ExecutionSummary = { issued: number; dropped: number; durationMs: number };

const sleep = (ms: number, signal?: AbortSignal) =>
  ms <= 0 ? Promise.resolve() : delay(ms, undefined, { signal }).catch(() => undefined);

/**
 * Runs a load model to its end: every loop is bounded by the model's duration (and iterations), so a run
 * always stops by itself. Task errors are the task's to record; an escaping error is counted as done.
 */
export async function executeLoad(model: LoadModel, options: ExecutionOptions): Promise<ExecutionSummary> {
  const started = performance.now();
  const deadline = started + modelDurationMs(model);
  const stopped = () => options.signal?.aborted === true || performance.now() >= deadline;
  let issued = 0;
  let dropped = 0;
  const run = async (context: TaskContext) => {
    issued += 1;
    await options.task(context).catch(() => undefined);
  };

  if (model.kind === "closed") {
    const random = seededRandom(options.seed);
    const iterations = model.iterations ?? Number.POSITIVE_INFINITY;
    await Promise.all(
      Array.from({ length: options.agents }, async (_, agent) => {
        for (let iteration = 0; iteration < iterations && !stopped(); iteration++) {
          await run({ agent, iteration });
          await sleep(Math.min(thinkTime(model, random), deadline - performance.now()), options.signal);
        }
      }),
    );
  } else {
    const maxInFlight = model.maxInFlight ?? Number.POSITIVE_INFINITY;
    const inFlight = new Set<Promise<void>>();
    const iterations = new Array<number>(options.agents).fill(0);
    let index = -1;
    for (const at of arrivals(model, options.seed)) {
      index += 1;
      await sleep(started + at - performance.now(), options.signal);
      // Every scheduled arrival lies inside the duration; a late timer must not cut the seeded schedule short.
      if (options.signal?.aborted) break;
      if (inFlight.size >= maxInFlight) {
        dropped += 1;
        continue;
      }
      const agent = index % options.agents;
      const iteration = iterations[agent] ?? 0;
      iterations[agent] = iteration + 1;
      const work = run({ agent, iteration }).finally(() => inFlight.delete(work));
      inFlight.add(work);
    }
    await Promise.all(inFlight);
  }
  return { issued, dropped, durationMs: performance.now() - started };
}
