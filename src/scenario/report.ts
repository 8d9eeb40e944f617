import type { LatencySummary, Phase, TimelinePoint } from "../load/index.ts";
import type { Comparison, PaymentCost } from "./baseline.ts";
import type { SettlementCost } from "./cost.ts";
import type { SettlementLoadFigures } from "./settlement-load.ts";
import type { SteadyState } from "./steady-state.ts";

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
  /** The run was stopped early (Ctrl-C, SIGTERM, an aborted signal): never ok, whatever else held. */
  interrupted: boolean;
  requests: number;
  /** Requests by outcome: paid, free, refused_by_policy, payment_failed, error… */
  outcomes: Record<string, number>;
  latency: Partial<Record<Phase, LatencySummary>>;
  /** End-to-end latency per outcome, e.g. `paid` against `session` requests. */
  latencyByOutcome: Record<string, LatencySummary>;
  /**
   * End-to-end latency of the paid requests per payment path (`exact/eip3009`, `batch-settlement/eip3009`…):
   * a voucher and a settled payment are both `paid`, but only one waits for the chain.
   */
  latencyByPath?: Record<string, LatencySummary>;
  throughput: { requests: number; paid: number; timeline: TimelinePoint[] };
  /** e2e latency histogram: upper bound (ms) and count per bucket. */
  distribution: { le: number; count: number }[];
  /** Figures per window (a minute on long runs), drift from the first to the last, and memory. */
  steadyState: SteadyState;
  /** Our facilitator's relayer keys and settlement queue over the run; absent with a facilitator of yours. */
  settlementLoad?: SettlementLoadFigures;
  /**
   * Requests by x402 error code, policy reason, `http_<status>` (a 4xx other than 402, a 5xx) or
   * transport code (`ECONNRESET`, `UND_ERR_HEADERS_TIMEOUT`…).
   */
  errors: Record<string, number>;
  /** What a user should look at even when every threshold held, e.g. a paid route that began serving free. */
  warnings: string[];
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
  /** A post-run step that threw: what was measured is kept, the step is named, and the run is not ok. */
  error?: { step: string; message: string };
  /** What one paid request cost: HTTP round trips, bytes, facilitator calls, gas per settlement, CPU. */
  paymentCost?: PaymentCost;
  /** Gas and fees per settlement at the run's prices (`--eth-price`, `--base-fee`; Base's L1 data fee). */
  cost?: SettlementCost;
  /** This run against `--baseline` (the CLI adds it). */
  comparison?: Comparison;
  /** Thresholds, invariants and cases all held, the run was not interrupted and no step failed. */
  ok: boolean;
};

/** What a run measured before its thresholds, invariants and verdict. */
export type MeasuredReport = Omit<RunReport, "thresholds" | "invariants" | "ok" | "error">;
