import {
  type LatencySummary,
  type LoadMeasurements,
  PHASES,
  type Phase,
  type TimelinePoint,
  type WindowPoint,
} from "../../load/index.ts";
import { METRIC } from "./job.ts";

/** One summary of Artillery's JSON report: its merged sketch's figures, in the unit the metric was emitted in. */
export type ArtillerySummary = {
  min: number;
  max: number;
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
};

/** One period (or the whole run) of Artillery's JSON report (`artillery run -o FILE`). */
export type ArtilleryPeriod = {
  /** When the period began, ms since the epoch (a string in some versions). */
  period?: number | string;
  counters: Record<string, number>;
  summaries: Record<string, ArtillerySummary>;
  firstMetricAt?: number;
  lastMetricAt?: number;
};

export type ArtilleryReport = { aggregate: ArtilleryPeriod; intermediate: ArtilleryPeriod[] };

/** The length of Artillery's reporting period: how finely its timeline and windows can go. */
export const PERIOD_SECONDS = 10;

/** Whether a parsed JSON file is an Artillery report; names what is missing when not. */
export function artilleryReportProblem(value: unknown): string | undefined {
  const report = value as Partial<ArtilleryReport> | null;
  if (typeof report !== "object" || report === null) return "it is not a JSON object";
  if (typeof report.aggregate !== "object" || report.aggregate === null) return "it has no aggregate";
  if (typeof report.aggregate.counters !== "object") return "its aggregate has no counters";
  if (!Array.isArray(report.intermediate)) return "it has no intermediate periods";
  return undefined;
}

const ms = (micros: number) => Math.round(micros) / 1000;

/** A summary of microseconds as the report's milliseconds. */
function latencyOf(summary: ArtillerySummary | undefined): LatencySummary | undefined {
  if (!summary || !(summary.count > 0)) return undefined;
  return {
    count: summary.count,
    p50: ms(summary.p50),
    p90: ms(summary.p90),
    p99: ms(summary.p99),
    p999: ms(summary.p999),
    max: ms(summary.max),
    mean: ms(summary.mean),
  };
}

/** The non-zero counters whose names start with `prefix`, by the rest of the name. */
function countersUnder(counters: Record<string, number>, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(counters)) {
    if (name.startsWith(prefix) && value > 0) out[name.slice(prefix.length)] = value;
  }
  return out;
}

function latenciesUnder(summaries: Record<string, ArtillerySummary>, prefix: string) {
  const out: Record<string, LatencySummary> = {};
  for (const [name, summary] of Object.entries(summaries)) {
    const latency = name.startsWith(prefix) ? latencyOf(summary) : undefined;
    if (latency) out[name.slice(prefix.length)] = latency;
  }
  return out;
}

/**
 * An Artillery run's figures as the report wants them. Artillery merged every worker's histograms as
 * sketches (1% relative accuracy) and added their counters; its periods (10 s) stand for the timeline's
 * seconds and the steady-state windows. It keeps no histogram of its own, so `distribution` is empty.
 */
export class ArtilleryMetrics implements LoadMeasurements {
  readonly requests: number;
  readonly outcomes: Record<string, number>;
  readonly errors: Record<string, number>;
  private readonly periods: ArtilleryPeriod[];

  constructor(private readonly report: ArtilleryReport) {
    const { counters } = report.aggregate;
    this.requests = counters[METRIC.requests] ?? 0;
    this.outcomes = countersUnder(counters, METRIC.outcome(""));
    this.errors = countersUnder(counters, METRIC.error(""));
    this.periods = [...report.intermediate].sort((a, b) => Number(a.period ?? 0) - Number(b.period ?? 0));
  }

  /**
   * The load's span, epoch ms: from the first worker ready to the last request done; Artillery's first
   * and last metric times where the workers did not say (they also hold the set-up and an idle tail).
   */
  private get span(): { start: number | undefined; end: number | undefined } {
    const { firstMetricAt, lastMetricAt, summaries } = this.report.aggregate;
    return {
      start: summaries[METRIC.clock("start")]?.min ?? firstMetricAt,
      end: summaries[METRIC.clock("end")]?.max ?? lastMetricAt,
    };
  }

  get durationMs(): number {
    const { start, end } = this.span;
    return start !== undefined && end !== undefined ? Math.max(1, end - start) : 1;
  }

  /** A counter of the whole run, 0 when no worker emitted it. */
  counter(name: string): number {
    return this.report.aggregate.counters[name] ?? 0;
  }

  /** Every counter of the whole run. */
  get counters(): Readonly<Record<string, number>> {
    return this.report.aggregate.counters;
  }

  latency(): Partial<Record<Phase, LatencySummary>> {
    const out: Partial<Record<Phase, LatencySummary>> = {};
    for (const phase of PHASES) {
      const latency = latencyOf(this.report.aggregate.summaries[METRIC.phase(phase)]);
      if (latency) out[phase] = latency;
    }
    return out;
  }

  latencyByOutcome(): Record<string, LatencySummary> {
    return latenciesUnder(this.report.aggregate.summaries, METRIC.e2eOf(""));
  }

  latencyByPath(): Record<string, LatencySummary> {
    return latenciesUnder(this.report.aggregate.summaries, METRIC.e2ePath(""));
  }

  distribution(): { le: number; count: number }[] {
    return [];
  }

  timeline(): TimelinePoint[] {
    return this.windows(PERIOD_SECONDS, Number.POSITIVE_INFINITY).map((w) => ({
      second: w.fromSecond,
      requests: w.requests,
      paid: w.paid,
      errors: w.errors,
      p50: w.p50,
      p99: w.p99,
    }));
  }

  /**
   * One window per Artillery period, whatever size is asked: a sketch's percentiles cannot be re-merged
   * here. The first and last periods hold only the part of the run inside them, so they are shorter.
   */
  windows(_windowSeconds: number, _totalSeconds: number): WindowPoint[] {
    const { start, end } = this.span;
    const runStart = start ?? Number(this.periods[0]?.period ?? 0);
    const runEnd = end ?? runStart;
    return this.periods.map((p) => {
      const periodStart = Number(p.period ?? runStart);
      const start = Math.max(periodStart, runStart);
      const end = Math.min(periodStart + PERIOD_SECONDS * 1000, Math.max(runEnd, start + 1));
      const seconds = Math.round(end - start) / 1000;
      const requests = p.counters[METRIC.requests] ?? 0;
      const e2e = latencyOf(p.summaries[METRIC.phase("e2e")]);
      return {
        fromSecond: Math.round((start - runStart) / 100) / 10,
        seconds,
        requests,
        paid: p.counters[METRIC.outcome("paid")] ?? 0,
        errors: p.counters[METRIC.errors] ?? 0,
        throughput: Math.round((requests / seconds) * 100) / 100,
        p50: e2e?.p50 ?? 0,
        p99: e2e?.p99 ?? 0,
      };
    });
  }
}
