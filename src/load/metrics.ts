import * as hdr from "hdr-histogram-js";

/** The phases a paid request goes through, as the runner and the benchmarks name them. */
export const PHASES = ["challenge", "sign", "paid", "verify", "settle", "e2e"] as const;
export type Phase = (typeof PHASES)[number];

export type LatencySummary = {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
};

/** One finished request as the metrics see it; the agent's `AgentResult` fits. */
export type Sample = {
  outcome: string;
  errorCode?: string | undefined;
  /** How a paid request paid (`exact/eip3009`, `batch-settlement/eip3009`, …): its e2e is kept apart too. */
  path?: string | undefined;
  timings: Partial<Record<Phase, number | undefined>>;
};

/** A span of consecutive seconds of a run, for steady-state figures (throughput and latency per minute). */
export type WindowPoint = {
  /** Seconds from the start of the load to the window's start. */
  fromSecond: number;
  seconds: number;
  requests: number;
  paid: number;
  errors: number;
  /** Requests per second over the window. */
  throughput: number;
  /** End-to-end ms (0 when the window finished nothing). */
  p50: number;
  p99: number;
};

export type TimelinePoint = {
  second: number;
  requests: number;
  paid: number;
  errors: number;
  p50: number;
  p99: number;
};

/**
 * What a load engine measured, in the report's terms: the in-process runner's HDR histograms
 * ({@link RunMetrics}) and Artillery's merged sketches (`ArtilleryMetrics`) both answer it, so the report, its
 * thresholds and its summary do not care which engine ran.
 */
export type LoadMeasurements = {
  readonly requests: number;
  readonly outcomes: Record<string, number>;
  readonly errors: Record<string, number>;
  latency(): Partial<Record<Phase, LatencySummary>>;
  latencyByOutcome(): Record<string, LatencySummary>;
  latencyByPath(): Record<string, LatencySummary>;
  /** e2e as (upper bound in ms, count) buckets; empty when the engine keeps no such histogram. */
  distribution(): { le: number; count: number }[];
  timeline(): TimelinePoint[];
  windows(windowSeconds: number, totalSeconds: number): WindowPoint[];
};

// Microsecond resolution up to an hour, three significant digits: what k6 and wrk report with.
const histogram = (digits: 2 | 3 = 3) =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: digits,
  });

/**
 * One second's end-to-end latency. A run keeps one for every second it lasts, so it is packed: a few kB
 * for the values a second sees, where the flat counts array is 13 kB however few it holds (8.7 MB for ten
 * minutes, against 2.2 MB packed, with the same percentiles).
 */
const secondHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 2,
    bitBucketSize: "packed",
  });

const ms = (micros: number) => Math.round(micros) / 1000;

function summarize(h: hdr.Histogram): LatencySummary {
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/**
 * Latency per phase in HDR histograms, outcomes and x402 error codes counted, and a per-second timeline
 * (throughput and end-to-end p50/p99) for the report's charts. One instance per run.
 */
export class RunMetrics implements LoadMeasurements {
  private readonly phases = new Map<Phase, hdr.Histogram>();
  /** e2e per outcome: a paid request and one served through a session take different paths. */
  private readonly byOutcome = new Map<string, hdr.Histogram>();
  private readonly byPath = new Map<string, hdr.Histogram>();
  private readonly seconds: { requests: number; paid: number; errors: number; e2e: hdr.Histogram }[] = [];
  readonly outcomes: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  /** e2e counts in quarter-octave buckets of microseconds (bucket i holds [2^(i/4), 2^((i+1)/4))). */
  private readonly e2eBuckets: number[] = [];
  requests = 0;

  constructor(private readonly startedAt = performance.now()) {}

  /** `at` is when the request finished, from `performance.now()`. */
  record(sample: Sample, at = performance.now()): void {
    this.requests += 1;
    this.outcomes[sample.outcome] = (this.outcomes[sample.outcome] ?? 0) + 1;
    if (sample.errorCode) this.errors[sample.errorCode] = (this.errors[sample.errorCode] ?? 0) + 1;
    // Microseconds, ≥ 1: the unit the histograms count in; undefined for a missing or broken timing.
    const micros = (value: number | undefined) =>
      value === undefined || !Number.isFinite(value) || value < 0
        ? undefined
        : Math.max(1, Math.round(value * 1000));
    for (const phase of PHASES) {
      const value = micros(sample.timings[phase]);
      if (value === undefined) continue;
      let h = this.phases.get(phase);
      if (!h) {
        h = histogram();
        this.phases.set(phase, h);
      }
      h.recordValue(value);
    }
    const e2e = micros(sample.timings.e2e);
    if (e2e !== undefined) {
      let h = this.byOutcome.get(sample.outcome);
      if (!h) {
        h = histogram();
        this.byOutcome.set(sample.outcome, h);
      }
      h.recordValue(e2e);
      if (sample.path !== undefined && sample.outcome === "paid") {
        let byPath = this.byPath.get(sample.path);
        if (!byPath) {
          byPath = histogram();
          this.byPath.set(sample.path, byPath);
        }
        byPath.recordValue(e2e);
      }
    }
    const second = Math.max(0, Math.floor((at - this.startedAt) / 1000));
    while (this.seconds.length <= second)
      this.seconds.push({ requests: 0, paid: 0, errors: 0, e2e: secondHistogram() });
    const bucket = this.seconds[second];
    if (!bucket) return;
    bucket.requests += 1;
    if (sample.outcome === "paid") bucket.paid += 1;
    if (sample.errorCode) bucket.errors += 1;
    if (e2e !== undefined) {
      bucket.e2e.recordValue(e2e);
      const index = Math.floor(Math.log2(e2e) * 4);
      while (this.e2eBuckets.length <= index) this.e2eBuckets.push(0);
      this.e2eBuckets[index] = (this.e2eBuckets[index] ?? 0) + 1;
    }
  }

  latency(): Partial<Record<Phase, LatencySummary>> {
    const out: Partial<Record<Phase, LatencySummary>> = {};
    for (const phase of PHASES) {
      const summary = this.phaseLatency(phase);
      if (summary) out[phase] = summary;
    }
    return out;
  }

  /** One phase's summary only (the live progress line asks for e2e four times a second). */
  phaseLatency(phase: Phase): LatencySummary | undefined {
    const h = this.phases.get(phase);
    return h && h.totalCount > 0 ? summarize(h) : undefined;
  }

  /** End-to-end latency of paid requests by payment path; empty when no sample named one. */
  latencyByPath(): Record<string, LatencySummary> {
    return Object.fromEntries([...this.byPath].map(([path, h]) => [path, summarize(h)]));
  }

  /** End-to-end latency of each outcome (paid, session, payment_failed, …). */
  latencyByOutcome(): Record<string, LatencySummary> {
    return Object.fromEntries([...this.byOutcome].map(([outcome, h]) => [outcome, summarize(h)]));
  }

  /** End-to-end latency as a histogram: (upper bound in ms, count) in quarter-octave buckets. */
  distribution(): { le: number; count: number }[] {
    const first = this.e2eBuckets.findIndex((n) => n > 0);
    if (first < 0) return [];
    return this.e2eBuckets.slice(first).map((count, i) => ({ le: ms(2 ** ((first + i + 1) / 4)), count }));
  }

  /**
   * The run in consecutive windows of `windowSeconds`, their latency merged from the per-second
   * histograms (so no request is recorded twice); `totalSeconds` bounds the last window, which may be
   * shorter than the others.
   */
  windows(windowSeconds: number, totalSeconds: number): WindowPoint[] {
    const out: WindowPoint[] = [];
    for (let from = 0; from < totalSeconds; from += windowSeconds) {
      const seconds = Math.min(windowSeconds, totalSeconds - from);
      const merged = histogram(2);
      let requests = 0;
      let paid = 0;
      let errors = 0;
      for (const bucket of this.seconds.slice(from, from + Math.ceil(seconds))) {
        requests += bucket.requests;
        paid += bucket.paid;
        errors += bucket.errors;
        merged.add(bucket.e2e);
      }
      out.push({
        fromSecond: from,
        seconds: Math.round(seconds * 1000) / 1000,
        requests,
        paid,
        errors,
        throughput: Math.round((requests / seconds) * 100) / 100,
        p50: merged.totalCount ? ms(merged.getValueAtPercentile(50)) : 0,
        p99: merged.totalCount ? ms(merged.getValueAtPercentile(99)) : 0,
      });
    }
    return out;
  }

  timeline(): TimelinePoint[] {
    return this.seconds.map((s, second) => ({
      second,
      requests: s.requests,
      paid: s.paid,
      errors: s.errors,
      p50: s.e2e.totalCount ? ms(s.e2e.getValueAtPercentile(50)) : 0,
      p99: s.e2e.totalCount ? ms(s.e2e.getValueAtPercentile(99)) : 0,
    }));
  }
}
