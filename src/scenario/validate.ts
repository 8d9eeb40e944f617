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
