import type { ScenarioDefinition } from "./define.ts";

/**
 * A scenario or a run's settings that cannot work: a harness error (exit 2) found before anything
 * starts. The CLI and the library say the same words, so a plain JavaScript user reads what a CLI user
 * would.
 */
export class ScenarioInputError extends Error {
  override name = "ScenarioInputError";
}

/**
 * `value` as a positive number (an integer when `integer`), or a {@link ScenarioInputError} naming
 * `label` (`--agents` on the command line, `agents.count` in a scenario file). Strings are read as
 * numbers, the way a flag arrives.
 */
export function positiveNumber(label: string, value: unknown, integer: boolean): number {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (
    typeof number !== "number" ||
    !Number.isFinite(number) ||
    number <= 0 ||
    (integer && !Number.isInteger(number))
  ) {
    throw new ScenarioInputError(
      `${label} must be a positive ${integer ? "integer" : "number"}, got ${typeof value === "string" ? value : JSON.stringify(value)}`,
    );
  }
  return number;
}

/** The same check for an optional setting: undefined stays undefined. */
export function optionalPositive(label: string, value: unknown, integer: boolean): number | undefined {
  return value === undefined ? undefined : positiveNumber(label, value, integer);
}

/** The run settings a scenario may refuse or ignore, by the name a CLI user typed them with. */
export type OverrideNames = {
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
