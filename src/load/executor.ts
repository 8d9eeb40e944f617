import { once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import {
  arrivals,
  DEFAULT_MAX_IN_FLIGHT,
  type LoadModel,
  modelDurationMs,
  seededRandom,
  thinkTime,
} from "./models.ts";

export type TaskContext = { agent: number; iteration: number };
export type Task = (context: TaskContext) => Promise<void>;

export type ExecutionOptions = {
  /** How many agents share the load; an open model hands arrivals to them in turn. */
  agents: number;
  seed: number;
  task: Task;
  /**
   * Stops issuing new work (a Ctrl-C, a failed run); work in flight is still awaited, for at most
   * `drainMs` after the abort.
   */
  signal?: AbortSignal;
  /** How long work in flight may take to finish once `signal` aborted (default 5 s). */
  drainMs?: number;
};

export type ExecutionSummary = {
  issued: number;
  dropped: number;
  /** Tasks still running when the drain after an abort ran out: the executor stopped waiting for them. */
  abandoned: number;
  durationMs: number;
};

const DEFAULT_DRAIN_MS = 5_000;

/**
 * Resolves when `work` does, or `drainMs` after `signal` aborts, whichever comes first: an abort must end
 * the run in bounded time even when a server holds requests open.
 */
async function drained(
  work: Promise<unknown>,
  signal: AbortSignal | undefined,
  drainMs: number,
): Promise<void> {
  const finished = new AbortController();
  const cut = signal
    ? (async () => {
        if (!signal.aborted) await once(signal, "abort", { signal: finished.signal });
        await delay(drainMs, undefined, { signal: finished.signal });
      })().catch(() => undefined)
    : new Promise<void>(() => {});
  try {
    await Promise.race([work, cut]);
  } finally {
    finished.abort();
  }
}

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
  let running = 0;
  const drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
  const run = async (context: TaskContext) => {
    issued += 1;
    running += 1;
    try {
      await options.task(context);
    } catch {
      // The task records its own failures.
    } finally {
      running -= 1;
    }
  };

  if (model.kind === "closed") {
    const random = seededRandom(options.seed);
    const iterations = model.iterations ?? Number.POSITIVE_INFINITY;
    const loops = Promise.all(
      Array.from({ length: options.agents }, async (_, agent) => {
        for (let iteration = 0; iteration < iterations && !stopped(); iteration++) {
          await run({ agent, iteration });
          await sleep(Math.min(thinkTime(model, random), deadline - performance.now()), options.signal);
        }
      }),
    );
    await drained(loops, options.signal, drainMs);
  } else {
    const maxInFlight = model.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
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
    // The offered rate is arrivals over the model's duration, so the run lasts it even when the last
    // arrival came early: a rate measured over a shorter run would read higher than what was offered.
    // Timers count whole milliseconds and may fire a fraction early: wait until the deadline has passed.
    for (let left = deadline - performance.now(); left > 0 && !options.signal?.aborted; ) {
      await sleep(Math.ceil(left), options.signal);
      left = deadline - performance.now();
    }
    await drained(Promise.all(inFlight), options.signal, drainMs);
  }
  return { issued, dropped, abandoned: running, durationMs: performance.now() - started };
}
