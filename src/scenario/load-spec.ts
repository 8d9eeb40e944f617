import { type BehaviourName, behaviours, type SpendingPolicy } from "../agents/index.ts";
import type { LoadModel, PathTable } from "../load/index.ts";
import { DEFAULT_TARGET, type ScenarioDefinition } from "./define.ts";
import { ScenarioInputError } from "./validate.ts";

/** A spending policy with its amounts as decimal strings: JSON has no bigint. */
export type PolicySpec = Omit<
  SpendingPolicy,
  "maxPerPayment" | "budgetPerRun" | "budgetPerDay" | "maxDeposit" | "perUrlKey"
> & {
  maxPerPayment?: string;
  budgetPerRun?: string;
  budgetPerDay?: string;
  maxDeposit?: string;
  perUrlKey?: "origin+path" | "origin+path+query";
};

/**
 * A scenario's load as plain data (JSON round-trips it): what an engine outside this process (Artillery's
 * workers, here or in the cloud) needs to run the agents. Made by {@link loadSpecOf}.
 */
export type LoadSpec = {
  scenario: string;
  model: LoadModel;
  agents: number;
  seed: number;
  target: string | PathTable;
  policy: PolicySpec;
  behaviour: BehaviourName;
  /** USDC base units each agent wallet is funded with. */
  usdc: string;
  /** Agents approve Permit2 before paying (a Permit2 or `upto` path). */
  permit2Allowance: boolean;
};

const AMOUNTS = ["maxPerPayment", "budgetPerRun", "budgetPerDay", "maxDeposit"] as const;

/** The agents' USDC unless the scenario says otherwise (what `fundedDevnet` gives a wallet). */
const DEFAULT_AGENT_USDC = 10_000_000_000n;

/**
 * Why this scenario cannot run outside this process, one reason per part that is code rather than data;
 * empty when it can. A function target or a behaviour of the scenario's own has no serialisable form; a
 * scenario with cases or `afterLoad` needs the agents and the stack in this process once the load is over.
 */
export function unportableParts(scenario: ScenarioDefinition): string[] {
  const reasons: string[] = [];
  if (typeof scenario.target === "function")
    reasons.push("its target is a function (give it as { paths, by }, a PathTable)");
  if (scenario.cases?.length) reasons.push("it runs cases against a stack of its own");
  if (scenario.afterLoad) reasons.push("it has an afterLoad step that needs the agents in this process");
  if (scenario.invariants?.length) reasons.push("it has invariants of its own that read the agents");
  const behaviour = scenario.agents.behaviour;
  if (behaviour !== undefined && behaviourName(behaviour) === undefined)
    reasons.push("its agents' behaviour is a function of its own (use one of the built-in behaviours)");
  if (typeof scenario.agents.policy?.perUrlKey === "function")
    reasons.push("its policy's perUrlKey is a function");
  return reasons;
}

const behaviourName = (behaviour: unknown): BehaviourName | undefined =>
  (Object.keys(behaviours) as BehaviourName[]).find((name) => behaviours[name] === behaviour);

/**
 * The scenario's load as data, after the run's overrides. Throws {@link ScenarioInputError} naming every
 * part that cannot travel ({@link unportableParts}), and for a scenario without a load.
 */
export function loadSpecOf(
  scenario: ScenarioDefinition,
  run: { model: LoadModel | undefined; agents: number; seed: number },
  engine: string,
): LoadSpec {
  const reasons = unportableParts(scenario);
  if (!run.model) reasons.push("it has no load");
  if (reasons.length > 0 || !run.model)
    throw new ScenarioInputError(
      `scenario ${scenario.name} cannot run on ${engine}: ${reasons.join("; ")}. Run it with \`x402-devnet scenario ${scenario.name}\` instead.`,
    );
  const { perUrlKey, maxPerPayment, budgetPerRun, budgetPerDay, maxDeposit, ...rest } =
    scenario.agents.policy ?? {};
  const amounts = { maxPerPayment, budgetPerRun, budgetPerDay, maxDeposit };
  const spec: PolicySpec = { ...rest, ...(typeof perUrlKey === "string" ? { perUrlKey } : {}) };
  for (const field of AMOUNTS) {
    const value = amounts[field];
    if (value !== undefined) spec[field] = value.toString();
  }
  return {
    scenario: scenario.name,
    model: run.model,
    agents: run.agents,
    seed: run.seed,
    target: (scenario.target as string | PathTable | undefined) ?? DEFAULT_TARGET,
    policy: spec,
    behaviour: behaviourName(scenario.agents.behaviour ?? behaviours.honest) ?? "honest",
    usdc: (scenario.agents.usdc ?? DEFAULT_AGENT_USDC).toString(),
    permit2Allowance: scenario.agents.permit2Allowance === true,
  };
}

/** The spending policy a {@link PolicySpec} stands for. */
export function policyOfSpec(spec: PolicySpec): SpendingPolicy {
  const { maxPerPayment, budgetPerRun, budgetPerDay, maxDeposit, ...rest } = spec;
  const amounts = { maxPerPayment, budgetPerRun, budgetPerDay, maxDeposit };
  const policy: SpendingPolicy = rest;
  for (const field of AMOUNTS) {
    const value = amounts[field];
    if (value !== undefined) policy[field] = BigInt(value);
  }
  return policy;
}
