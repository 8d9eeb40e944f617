import type { LatencySummary, Phase, TimelinePoint } from "../load/index.ts";

export type ThresholdResult = { expr: string; actual: number | null; ok: boolean };
export type InvariantResult = { name: string; ok: boolean; detail: string };

/**
 * What a scenario run produced: the `--json` file, the HTML report's input, and what the exit code is
 * decided on. Latencies are milliseconds; throughput is per second.
 */
export type RunReport = {
  scenario: string;
  description: string;
  /** The effective settings: agents, load model, devnet profile, targets, thresholds. */
  config: Record<string, unknown>;
  seed: number;
  runId: string;
  startedAt: string;
  durationMs: number;
  requests: number;
  /** Requests by outcome: paid, free, refused_by_policy, payment_failed, error… */
  outcomes: Record<string, number>;
  latency: Partial<Record<Phase, LatencySummary>>;
  /** End-to-end latency per outcome, e.g. `paid` against `session` requests. */
  latencyByOutcome: Record<string, LatencySummary>;
  throughput: { requests: number; paid: number; timeline: TimelinePoint[] };
  /** e2e latency histogram: upper bound (ms) and count per bucket. */
  distribution: { le: number; count: number }[];
  /** Requests by x402 error code (or policy reason). */
  errors: Record<string, number>;
  chain: {
    startBlock: number;
    endBlock: number;
    settlements: number;
    settlementTransactions: number;
    gasUsed: string;
  };
  thresholds: ThresholdResult[];
  invariants: InvariantResult[];
  /** Scenario-specific cases (e.g. the failures scenario's expected vs observed outcomes). */
  cases?: { name: string; expected: string; observed: string; ok: boolean }[];
  /** 0: thresholds and invariants hold; 1: one failed. */
  ok: boolean;
};
