/**
 * Load models in the vocabulary of k6 and Artillery. Closed: a fixed number of agents, each looping
 * (request, optional think time) for a number of iterations or a duration. Open: arrivals at a rate that
 * ramps through stages, independent of how fast the system answers (what exposes queueing).
 */
export type ClosedModel = {
  kind: "closed";
  /** Iterations per agent; the run ends at whichever of iterations and duration comes first. */
  iterations?: number;
  durationMs: number;
  /** Pause between an agent's requests: a fixed ms, or a [min, max] range drawn from the seeded RNG. */
  thinkTimeMs?: number | readonly [number, number];
};

export type OpenStage = {
  durationMs: number /** arrivals per second reached at the end of the stage */;
  rate: number;
};

export type OpenModel = {
  kind: "open";
  /** Rate at the start of the first stage (default: the first stage's rate, i.e. constant). */
  startRate?: number;
  stages: readonly OpenStage[];
  /**
   * Arrivals beyond this many in flight are dropped and counted, as k6's dropped_iterations (default
   * {@link DEFAULT_MAX_IN_FLIGHT}). An open model offered more than the system answers piles requests up
   * without bound otherwise, until the harness itself runs out of memory and the report is lost.
   */
  maxInFlight?: number;
};

export type LoadModel = ClosedModel | OpenModel;

/** Requests an open model keeps in flight at most, unless it says otherwise: ~0.5 GB of harness memory. */
export const DEFAULT_MAX_IN_FLIGHT = 2_000;

/** mulberry32: a tiny seeded PRNG, so two runs of one scenario issue the same schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function modelDurationMs(model: LoadModel): number {
  return model.kind === "closed" ? model.durationMs : model.stages.reduce((sum, s) => sum + s.durationMs, 0);
}

/** The rate (per second) of an open model at `t` ms after the start: linear within each stage. */
export function rateAt(model: OpenModel, t: number): number {
  let start = model.startRate ?? model.stages[0]?.rate ?? 0;
  let elapsed = 0;
  for (const stage of model.stages) {
    if (t < elapsed + stage.durationMs)
      return start + ((stage.rate - start) * (t - elapsed)) / stage.durationMs;
    elapsed += stage.durationMs;
    start = stage.rate;
  }
  return 0;
}

/**
 * Arrival times (ms from start) of an open model, one at a time: a Poisson process whose rate follows the
 * stages, drawn by thinning against the highest rate. Deterministic for a seed; a long run at a high rate
 * never holds its whole schedule in memory.
 */
export function* arrivals(model: OpenModel, seed: number): Generator<number> {
  const random = seededRandom(seed);
  const total = modelDurationMs(model);
  const peak = Math.max(model.startRate ?? 0, ...model.stages.map((s) => s.rate));
  if (peak <= 0) return;
  let t = 0;
  for (;;) {
    t += (-Math.log(1 - random()) / peak) * 1000;
    if (t >= total) return;
    if (random() * peak <= rateAt(model, t)) yield t;
  }
}

/** The whole schedule of {@link arrivals}, for inspection. */
export const arrivalSchedule = (model: OpenModel, seed: number): number[] => [...arrivals(model, seed)];

/** Think time for one pause, from the model's fixed value or range. */
export function thinkTime(model: ClosedModel, random: () => number): number {
  const think = model.thinkTimeMs;
  if (think === undefined) return 0;
  if (typeof think === "number") return think;
  return think[0] + (think[1] - think[0]) * random();
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** The model in words, for a report's description: what actually ran, after any overrides. */
export function describeModel(model: LoadModel): string {
  if (model.kind === "closed") {
    const think = model.thinkTimeMs;
    return [
      `closed loop for ${seconds(model.durationMs)}`,
      model.iterations === undefined ? undefined : `at most ${model.iterations} iterations each`,
      think === undefined
        ? undefined
        : typeof think === "number"
          ? `${think} ms think time`
          : `${think[0]}–${think[1]} ms think time`,
    ]
      .filter((part) => part !== undefined)
      .join(", ");
  }
  const rates = [model.startRate ?? model.stages[0]?.rate ?? 0, ...model.stages.map((s) => s.rate)];
  const total = seconds(modelDurationMs(model));
  if (rates.every((r) => r === rates[0])) return `open model at ${rates[0]}/s for ${total}`;
  return `open model, ${model.stages.length} stage${model.stages.length === 1 ? "" : "s"} over ${total}, ${Math.min(...rates)}–${Math.max(...rates)}/s`;
}
