import type { Agent, AgentResult, Behaviour, SpendingPolicy } from "../agents/index.ts";
import {
  type Devnet,
  type Hardfork,
  type History,
  isProfileName,
  type NetworkName,
  PROFILES,
  type ProfileName,
} from "../chain/index.ts";
import type { LoadModel, PathTable, TaskContext } from "../load/index.ts";
import type { Stack, StackOptions } from "../stack.ts";
import type { PaidRecord } from "./invariants.ts";
import type { InvariantResult, RunReport } from "./report.ts";
import { positiveNumber, ScenarioInputError } from "./validate.ts";

/** What the scenario's agents are: how many, how they are funded, and what they may spend. */
export type AgentsSpec = {
  count: number;
  /** USDC base units each agent starts with (default 10,000 USDC). */
  usdc?: bigint;
  policy?: SpendingPolicy;
  /** How the agents pay (default honest); hostile behaviours alter what they send. */
  behaviour?: Behaviour;
  /**
   * Each agent approves Permit2 for the devnet's USDC before the run, as a payer must before any Permit2
   * path (`exact` by Permit2, `upto`) can settle (default false: a wallet does not do it unasked).
   */
  permit2Allowance?: boolean;
  /**
   * Why `count` cannot be overridden (e.g. cases that pay from given account indices): a run asking for
   * another count is refused up front rather than failing case by case.
   */
  fixed?: string;
};

/** What a case can reach: the running stack (with its fault proxies), the funded agents, and a recorder. */
export type CaseContext = {
  stack: Stack;
  agents: readonly Agent[];
  /**
   * Makes an agent (an index into `agents`, or one the case made for a funded account) request `path` on
   * the server, and records the result like any load request.
   */
  request(agent: number | Agent, path: string, init?: RequestInit): Promise<AgentResult>;
  /** Records a paid response the case obtained by hand (a raw header sent to a second server, say). */
  recordPaid(record: PaidRecord): void;
};

/**
 * A named case with the outcome a user should see, e.g. `"502 unexpected_settle_error"`. `run` sets the
 * stage (faults), makes its requests through `context.request`, and returns what it observed in the
 * same words; faults are healed after every case.
 */
export type ScenarioCase = {
  name: string;
  expected: string;
  run(context: CaseContext): Promise<string>;
};

/** What a scenario's `afterLoad` can reach. */
export type AfterLoadContext = {
  /** The stack the runner started; absent when the run is against the user's server. */
  stack: Stack | undefined;
  devnet: Devnet;
  agents: readonly Agent[];
};

/** What a scenario's own invariant can read once the run is over. */
export type InvariantContext = {
  /** The chain the run settled on (its client reads any state, at any of the run's blocks). */
  devnet: Devnet;
  /** The run's blocks, first to last. */
  fromBlock: bigint;
  toBlock: bigint;
  agents: readonly Agent[];
  /** Every paid response (channel payments' too): who paid whom, how much, in which transaction. */
  paid: readonly PaidRecord[];
  /** What was measured: outcomes, latency, errors, chain figures. */
  report: Omit<RunReport, "thresholds" | "invariants" | "ok">;
};

/**
 * A property the scenario's system must keep, checked against chain state after every run next to the
 * built-in money invariants (e.g. "no agent paid a resource twice": sessions must make repeats free).
 */
export type ScenarioInvariant = {
  name: string;
  check(context: InvariantContext): Promise<Omit<InvariantResult, "name">> | Omit<InvariantResult, "name">;
};

/**
 * A scenario, in the vocabulary of k6 and Artillery: who (agents and their policy), against what (the
 * devnet profile and the server's paid routes), how hard (the load model), and what must hold
 * (thresholds, checked with the money invariants after every run).
 */
export type ScenarioDefinition = {
  name: string;
  description: string;
  devnet?: {
    /** The network the devnet runs as (default `base`): `base-sepolia` for a server built against it. */
    network?: NetworkName;
    profile?: ProfileName;
    blockTime?: number;
    hardfork?: Hardfork;
    history?: History;
    gasLimit?: bigint;
  };
  facilitator?: Omit<NonNullable<StackOptions["facilitator"]>, "port">;
  /** How many payees to derive, and the paid routes given them (default: GET /weather for $0.001). */
  server?: Omit<NonNullable<StackOptions["server"]>, "port">;
  /** Fault proxies on the facilitator → RPC and server → facilitator hops (for `cases`). */
  faults?: StackOptions["faults"];
  /**
   * The scenario reorganises the chain. anvil does not undo a reorg faithfully on a fork, so a run on a
   * forked devnet (the `flashblocks` and `base` profiles, `--fork-url`) is refused before it starts.
   */
  reorgs?: boolean;
  agents: AgentsSpec;
  /**
   * The path an agent requests on each iteration of the load (default `DEFAULT_TARGET`): one path, a
   * table of paths (which can run on Artillery's workers too), or a function of the agent and iteration.
   */
  target?: string | PathTable | ((context: TaskContext) => string);
  /** The load, run after the cases; a scenario of cases alone may leave it out. */
  load?: LoadModel;
  /**
   * Work the system does once the load is over and before the invariants read the chain, as it would at
   * the end of a day: e.g. `settleChannels`, which refunds the agents' channels and claims and settles
   * their charges. What it throws is reported as the failed step; it does not count in the run's figures.
   */
  afterLoad?: (context: AfterLoadContext) => Promise<void> | void;
  /** Named cases, run one after the other before the load, each with its expected outcome. */
  cases?: readonly ScenarioCase[];
  /** k6-style thresholds, e.g. `e2e.p99 < 50ms`, `errors.rate < 0.001`, `throughput.paid > 100/s`. */
  thresholds?: readonly string[];
  /** The scenario's own invariants, on top of the built-in ones (money in = money out, …). */
  invariants?: readonly ScenarioInvariant[];
  /** Seed of the arrival schedule and think times (default 1). */
  seed?: number;
};

/** The default stack's paid route. */
export const DEFAULT_TARGET = "/weather";

/**
 * Gives a scenario file completion and checking, and checks the same at run time for plain JavaScript:
 * throws {@link ScenarioInputError} for a missing or impossible field.
 */
export function defineScenario(definition: ScenarioDefinition): ScenarioDefinition {
  checkScenario(definition);
  return definition;
}

/** The run settings a scenario may refuse or ignore, by the name a CLI user typed them with. */
export type OverrideNames = {
  /** The devnet profile the run asks for, over the scenario's. */
  profile?: ProfileName | undefined;
  forkUrl?: string | undefined;
  agents?: number | undefined;
  durationMs?: number | undefined;
  rate?: number | undefined;
  seed?: number | undefined;
  findCapacity?: boolean | undefined;
};

/**
 * Checks what a run asks of a scenario before anything starts: throws {@link ScenarioInputError} for a
 * setting the scenario cannot honour, and returns a notice for each setting it will ignore.
 */
export function checkOverrides(scenario: ScenarioDefinition, overrides: OverrideNames): string[] {
  const ignored: string[] = [];
  const profile = overrides.profile ?? scenario.devnet?.profile ?? "instant";
  // An unknown profile is refused where the devnet starts, with the list of names.
  const forkedProfile = isProfileName(profile) && PROFILES[profile].stateRoots === "skipped";
  if (scenario.reorgs && (overrides.forkUrl || forkedProfile)) {
    const why = overrides.forkUrl
      ? "--fork-url runs it on a fork"
      : `--profile ${profile} runs as a fork of an empty chain (skipped state roots)`;
    throw new ScenarioInputError(
      `scenario ${scenario.name} injects reorgs, which anvil does not undo faithfully on a forked chain (storage the dropped blocks wrote stays written); ${why}: run it on --profile instant`,
    );
  }
  if (overrides.agents !== undefined && scenario.agents.fixed && overrides.agents !== scenario.agents.count) {
    throw new ScenarioInputError(
      `scenario ${scenario.name} needs exactly ${scenario.agents.count} agents (${scenario.agents.fixed}); --agents ${overrides.agents} cannot be honoured`,
    );
  }
  if (!scenario.load) {
    if (overrides.findCapacity) {
      throw new ScenarioInputError(
        `scenario ${scenario.name} has no load to ramp (it is made of cases only); --find-capacity cannot be honoured`,
      );
    }
    const noLoad = `scenario ${scenario.name} has no load, only cases`;
    if (overrides.durationMs !== undefined) ignored.push(`--duration ignored: ${noLoad}`);
    if (overrides.rate !== undefined) ignored.push(`--rate ignored: ${noLoad}`);
    if (overrides.seed !== undefined) ignored.push(`--seed ignored: ${noLoad}`);
  }
  return ignored;
}

/**
 * Checks a scenario's shape at run time, for users of plain JavaScript whose editor did not: the
 * messages name the field as the scenario file spells it.
 */
export function checkScenario(definition: unknown): asserts definition is ScenarioDefinition {
  const scenario = definition as Partial<ScenarioDefinition> | null | undefined;
  if (typeof scenario !== "object" || scenario === null) {
    throw new ScenarioInputError(`a scenario must be an object, got ${JSON.stringify(definition)}`);
  }
  if (typeof scenario.name !== "string" || scenario.name === "") {
    throw new ScenarioInputError("a scenario needs a name (a non-empty string)");
  }
  const where = `scenario ${scenario.name}`;
  if (typeof scenario.description !== "string") {
    throw new ScenarioInputError(`${where} needs a description (a string)`);
  }
  if (typeof scenario.agents !== "object" || scenario.agents === null) {
    throw new ScenarioInputError(`${where} needs agents: { count: N }`);
  }
  positiveNumber(`${where}: agents.count`, scenario.agents.count, true);
  if (!scenario.load && !scenario.cases?.length) {
    throw new ScenarioInputError(`${where} needs a load or cases: it has nothing to run`);
  }
  const load = scenario.load;
  if (load) {
    if (load.kind === "closed") {
      positiveNumber(`${where}: load.durationMs`, load.durationMs, false);
      if (load.iterations !== undefined) positiveNumber(`${where}: load.iterations`, load.iterations, true);
    } else if (load.kind === "open") {
      if (!Array.isArray(load.stages) || load.stages.length === 0) {
        throw new ScenarioInputError(`${where}: an open load needs at least one stage`);
      }
      load.stages.forEach((stage, i) => {
        positiveNumber(`${where}: load.stages[${i}].durationMs`, stage.durationMs, false);
        positiveNumber(`${where}: load.stages[${i}].rate`, stage.rate, false);
      });
    } else {
      throw new ScenarioInputError(
        `${where}: load.kind must be "closed" or "open", got ${JSON.stringify((load as { kind?: unknown }).kind)}`,
      );
    }
  }
  if (scenario.thresholds !== undefined && !Array.isArray(scenario.thresholds)) {
    throw new ScenarioInputError(`${where}: thresholds must be a list of strings`);
  }
}
