import type { Address } from "viem";
import type { Behaviour, SpendingPolicy } from "../agents/index.ts";
import type { ProfileName } from "../chain/index.ts";
import type { LoadModel, TaskContext } from "../load/index.ts";
import type { PaidRoute } from "../server/index.ts";

/** What the scenario's agents are: how many, how they are funded, and what they may spend. */
export type AgentsSpec = {
  count: number;
  /** USDC base units each agent starts with (default 10,000 USDC). */
  usdc?: bigint;
  policy?: SpendingPolicy;
  /** How the agents pay (default honest); hostile behaviours alter what they send. */
  behaviour?: Behaviour;
};

/**
 * A scenario, in the vocabulary of k6 and Artillery: who (agents and their policy), against what (the
 * devnet profile and the server's paid routes), how hard (the load model), and what must hold
 * (thresholds, checked with the money invariants after every run).
 */
export type ScenarioDefinition = {
  name: string;
  description: string;
  devnet?: { profile?: ProfileName; blockTime?: number; gasLimit?: bigint };
  facilitator?: { relayers?: number; maxBatch?: number };
  /** The paid routes, given the payees the runner derives (default: GET /weather for $0.001). */
  server?: { payees?: number; routes?: (payees: readonly Address[]) => Record<string, PaidRoute> };
  agents: AgentsSpec;
  /** The path an agent requests on each iteration. */
  target: string | ((context: TaskContext) => string);
  load: LoadModel;
  /** k6-style thresholds, e.g. `e2e.p99 < 50ms`, `errors.rate < 0.001`, `throughput.paid > 100/s`. */
  thresholds?: readonly string[];
  /** Seed of the arrival schedule and think times (default 1). */
  seed?: number;
};

/** Identity with types: gives a scenario file completion and checking. */
export function defineScenario(definition: ScenarioDefinition): ScenarioDefinition {
  return definition;
}
