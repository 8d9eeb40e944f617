import type { DevnetClient } from "../chain/index.ts";
import type { RunMetrics, WindowPoint } from "../load/index.ts";

/** What the run looked like at one moment: the chain's height and the harness's memory. */
export type RunSample = { second: number; block: number | null; harnessRssMb: number };

export type SteadyWindow = WindowPoint & {
  /** The chain's height at the window's end (the last sample in it), null when none was taken. */
  block: number | null;
  harnessRssMb: number | null;
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
    harness: { startMb: number; endMb: number; growthMb: number; growthPerHourMb: number | null };
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

/** The harness process's resident memory, in MB. */
export const harnessRssMb = () => Math.round(process.memoryUsage.rss() / 1e5) / 10;

/**
 * Samples the chain's height and the harness's memory every second until stopped. A sample the chain does
 * not answer records no height: the sampler must not fail or slow the run it watches.
 */
export function startSampler(client: DevnetClient): { stop(): RunSample[]; startRssMb: number } {
  const started = performance.now();
  const samples: RunSample[] = [];
  const take = async () => {
    const second = (performance.now() - started) / 1000;
    const rss = harnessRssMb();
    const block = await client.getBlockNumber({ cacheTime: 0 }).then(Number, () => null);
    samples.push({ second, block, harnessRssMb: rss });
  };
  const timer = setInterval(() => void take(), SAMPLE_EVERY_MS);
  timer.unref();
  return {
    startRssMb: harnessRssMb(),
    stop() {
      clearInterval(timer);
      return samples.sort((a, b) => a.second - b.second);
    },
  };
}

const change = (first: number, last: number) => (first > 0 ? round((last - first) / first) : null);
const round = (value: number) => Math.round(value * 10_000) / 10_000;

/** The run's steady-state figures from its metrics and samples. */
export function steadyState(
  metrics: RunMetrics,
  durationMs: number,
  samples: readonly RunSample[],
  memory: { startMb: number; endMb: number },
): SteadyState {
  const size = windowSeconds(durationMs);
  const totalSeconds = durationMs / 1000;
  const windows = metrics.windows(size, totalSeconds).map((window): SteadyWindow => {
    const end = window.fromSecond + window.seconds;
    const last = samples.filter((s) => s.second <= end && s.second > window.fromSecond).at(-1);
    return { ...window, block: last?.block ?? null, harnessRssMb: last?.harnessRssMb ?? null };
  });
  // A partial last window is too short to compare with a whole one.
  const full = windows.filter((w) => w.seconds === size);
  const first = full[0];
  const last = full.at(-1);
  const comparable = first !== undefined && last !== undefined && full.length >= 2 && first.requests > 0;
  const growthMb = round(memory.endMb - memory.startMb);
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
      harness: {
        startMb: memory.startMb,
        endMb: memory.endMb,
        growthMb,
        growthPerHourMb: durationMs > 0 ? Math.round((growthMb * 3_600_000) / durationMs) : null,
      },
    },
  };
}
