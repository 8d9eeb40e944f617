import { readFile } from "node:fs/promises";
import type { DevnetClient } from "../chain/index.ts";
import type { LoadMeasurements, WindowPoint } from "../load/index.ts";

/** What the run looked like at one moment: the chain's height and the memory of the harness and of anvil. */
export type RunSample = {
  second: number;
  block: number | null;
  harnessRssMb: number;
  anvilRssMb: number | null;
};

export type SteadyWindow = WindowPoint & {
  /** The chain's height at the window's end (the last sample in it), null when none was taken. */
  block: number | null;
  harnessRssMb: number | null;
  anvilRssMb: number | null;
};

/**
 * One process's resident memory over a run. `growthPerHourMb` is the slope of its samples after the first
 * window (least squares), so start-up (JIT, pools, the chain's first blocks) does not read as a leak; the
 * plain end − start when too few samples were taken.
 */
export type MemoryFigures = {
  startMb: number;
  endMb: number;
  growthMb: number;
  growthPerHourMb: number | null;
};

/**
 * Whether a run held steady: its figures per window (a minute on long runs), and how much worse the last
 * full window was than the first. A figure that depends on how long the run has been going measures the
 * devnet's age as much as the system under test.
 */
export type SteadyState = {
  windowSeconds: number;
  windows: SteadyWindow[];
  /**
   * How much worse the last full window is than the first, as a fraction: latency growth, throughput
   * drop (negative: better). Null with fewer than two full windows, or a first window that measured
   * nothing.
   */
  drift: { e2e: { p50: number | null; p99: number | null }; throughput: number | null };
  memory: {
    harness: MemoryFigures;
    /** Null when the run started no anvil (an attached chain), or off Linux, where /proc is not there to read. */
    anvil: MemoryFigures | null;
  };
};

const MINUTE_S = 60;
/** Windows per run when the run is too short for minutes: enough to see a trend, each long enough to count. */
const SHORT_RUN_WINDOWS = 6;
const MIN_WINDOW_S = 5;
// Often enough that every window, 5 s at the shortest, ends near a sample.
const SAMPLE_EVERY_MS = 1_000;

/** A minute once a run has three of them; on shorter runs, a sixth of the run (at least 5 s). */
export function windowSeconds(durationMs: number): number {
  const seconds = durationMs / 1000;
  if (seconds >= 3 * MINUTE_S) return MINUTE_S;
  return Math.max(MIN_WINDOW_S, Math.floor(seconds / SHORT_RUN_WINDOWS));
}

const toMb = (bytes: number) => Math.round(bytes / 1e5) / 10;

/** The harness process's resident memory, in MB. */
export const harnessRssMb = () => toMb(process.memoryUsage.rss());

/** Another process's resident memory in MB, from Linux's /proc; null where it cannot be read. */
export async function processRssMb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? null : toMb(Number(kb) * 1024);
}

export type Sampler = {
  /** Stops sampling and returns the samples in time order, the last one taken now. */
  stop(): Promise<RunSample[]>;
};

/**
 * Samples the chain's height and the memory of the harness and of anvil (`anvilPid`, when the run started
 * it) every second, and once at the start and at the stop. A sample the chain does not answer records no
 * height: the sampler must not fail or slow the run it watches.
 */
export function startSampler(client: DevnetClient, anvilPid?: number): Sampler {
  const started = performance.now();
  const samples: RunSample[] = [];
  const take = async () => {
    const second = (performance.now() - started) / 1000;
    const harness = harnessRssMb();
    const [block, anvil] = await Promise.all([
      client.getBlockNumber({ cacheTime: 0 }).then(Number, () => null),
      processRssMb(anvilPid),
    ]);
    samples.push({ second, block, harnessRssMb: harness, anvilRssMb: anvil });
  };
  const first = take();
  const timer = setInterval(() => void take(), SAMPLE_EVERY_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([first, take()]);
      return samples.sort((a, b) => a.second - b.second);
    },
  };
}

/** "harness 194 → 574 MB (+900 MB/h), anvil 40 → 185 MB (+6000 MB/h)", for the terminal and the page alike. */
export function describeMemory(memory: SteadyState["memory"]): string {
  const one = (name: string, figures: MemoryFigures) =>
    `${name} ${figures.startMb} → ${figures.endMb} MB${figures.growthPerHourMb === null ? "" : ` (${figures.growthPerHourMb >= 0 ? "+" : ""}${figures.growthPerHourMb} MB/h)`}`;
  return [
    one("harness", memory.harness),
    memory.anvil ? one("anvil", memory.anvil) : "anvil not measured",
  ].join(", ");
}

/** Least-squares slope of y over x; null with fewer than three points or no spread in x. */
function slope(points: readonly [x: number, y: number][]): number | null {
  if (points.length < 3) return null;
  const n = points.length;
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n;
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0);
  const sxy = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0);
  return sxx > 0 ? sxy / sxx : null;
}

function memoryFigures(
  samples: readonly RunSample[],
  read: (sample: RunSample) => number | null,
  afterSecond: number,
  durationMs: number,
): MemoryFigures | null {
  const taken = samples.flatMap((s) => {
    const mb = read(s);
    return mb === null ? [] : [[s.second, mb] as [number, number]];
  });
  const start = taken[0];
  const end = taken.at(-1);
  if (start === undefined || end === undefined) return null;
  const growthMb = round(end[1] - start[1]);
  const perSecond = slope(taken.filter(([second]) => second >= afterSecond));
  return {
    startMb: start[1],
    endMb: end[1],
    growthMb,
    growthPerHourMb:
      perSecond !== null
        ? Math.round(perSecond * 3_600)
        : durationMs > 0
          ? Math.round((growthMb * 3_600_000) / durationMs)
          : null,
  };
}

const change = (first: number, last: number) => (first > 0 ? round((last - first) / first) : null);
const round = (value: number) => Math.round(value * 10_000) / 10_000;

/**
 * The run's steady-state figures from its metrics and samples, in windows of `size` seconds (by default
 * {@link windowSeconds}; an engine that measured in periods of its own gives their length).
 */
export function steadyState(
  metrics: Pick<LoadMeasurements, "windows">,
  durationMs: number,
  samples: readonly RunSample[],
  size = windowSeconds(durationMs),
): SteadyState {
  const totalSeconds = durationMs / 1000;
  const windows = metrics.windows(size, totalSeconds).map((window): SteadyWindow => {
    const end = window.fromSecond + window.seconds;
    const last = samples.filter((s) => s.second <= end && s.second > window.fromSecond).at(-1);
    return {
      ...window,
      block: last?.block ?? null,
      harnessRssMb: last?.harnessRssMb ?? null,
      anvilRssMb: last?.anvilRssMb ?? null,
    };
  });
  // A partial last window is too short to compare with a whole one.
  const full = windows.filter((w) => w.seconds === size);
  const first = full[0];
  const last = full.at(-1);
  const comparable = first !== undefined && last !== undefined && full.length >= 2 && first.requests > 0;
  return {
    windowSeconds: size,
    windows,
    drift: comparable
      ? {
          e2e: { p50: change(first.p50, last.p50), p99: change(first.p99, last.p99) },
          throughput:
            first.throughput > 0 ? round((first.throughput - last.throughput) / first.throughput) : null,
        }
      : { e2e: { p50: null, p99: null }, throughput: null },
    memory: {
      harness: memoryFigures(samples, (s) => s.harnessRssMb, size, durationMs) ?? {
        startMb: harnessRssMb(),
        endMb: harnessRssMb(),
        growthMb: 0,
        growthPerHourMb: null,
      },
      anvil: memoryFigures(samples, (s) => s.anvilRssMb, size, durationMs),
    },
  };
}
