import type { LoadModel } from "../load/index.ts";
import type { CostOptions } from "./cost.ts";
import type { ScenarioDefinition } from "./define.ts";
import type { RunReport } from "./report.ts";
import type { RunTarget } from "./target.ts";
import type { Threshold } from "./thresholds.ts";

/** How the run is driven, whichever engine drives it (part of `RunOverrides`). */
export type EngineSettings = {
  /** Ctrl-C: stop issuing requests, finish the run and report. */
  signal?: AbortSignal;
  /** Live progress on stderr (default true). */
  progress?: boolean;
  /** Prices for the report's cost per settlement; a chain with Base's GasPriceOracle gives the L1 figures. */
  cost?: CostOptions;
  /** How long each post-run read of the chain may take (default 180 s, 15 s once interrupted). */
  stepDeadlineMs?: number;
};

/** A run's settings once checked: what every engine is handed. */
export type RunPlan = {
  agentCount: number;
  seed: number;
  model: LoadModel | undefined;
  thresholds: Threshold[];
  ignored: string[];
};

/**
 * The seam between the runner and what drives the load. `runScenario` checks the scenario and the
 * settings, starts the target (our stack, or the user's server and chain) and tears it down; the engine
 * runs the agents against it and judges the run on chain. The in-process engine runs the agents in this
 * process; Artillery's (`artilleryEngine`) runs them as Artillery virtual users on worker threads here, or
 * writes the script for workers in the cloud.
 */
export type LoadEngine = {
  /** How the report's description and errors name the engine. */
  readonly name: string;
  /** Refuses, before anything starts, a scenario this engine cannot run (throws `ScenarioInputError`). */
  check(scenario: ScenarioDefinition, plan: RunPlan): void;
  run(
    scenario: ScenarioDefinition,
    settings: EngineSettings,
    target: RunTarget,
    plan: RunPlan,
  ): Promise<RunReport>;
};
