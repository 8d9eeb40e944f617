import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ScenarioDefinition } from "./define.ts";

export const SCENARIOS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scenarios");

export class UnknownScenarioError extends Error {
  override name = "UnknownScenarioError";
}

/** The scenario files: `scenarios/<name>.ts`, each with a `defineScenario(...)` default export. */
export async function scenarioNames(dir = SCENARIOS_DIR): Promise<string[]> {
  const files = await readdir(dir);
  return files
    .filter((f) => f.endsWith(".ts"))
    .map((f) => basename(f, ".ts"))
    .sort();
}

export async function loadScenario(name: string, dir = SCENARIOS_DIR): Promise<ScenarioDefinition> {
  const names = await scenarioNames(dir);
  if (!names.includes(name)) {
    throw new UnknownScenarioError(
      `no scenario named ${JSON.stringify(name)}; there are: ${names.join(", ")}`,
    );
  }
  const module = (await import(pathToFileURL(join(dir, `${name}.ts`)).href)) as {
    default?: ScenarioDefinition;
  };
  if (!module.default) throw new UnknownScenarioError(`scenarios/${name}.ts has no default export`);
  return module.default;
}
