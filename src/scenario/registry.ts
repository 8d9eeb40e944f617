import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { checkScenario, type ScenarioDefinition } from "./define.ts";

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

/**
 * Whether a scenario argument names a file of the user's rather than one of `scenarios/`: a path
 * (`./my-scenario.ts`, `load/checkout`) or a module file name (`my-scenario.ts`).
 */
export function isScenarioPath(nameOrPath: string): boolean {
  return nameOrPath.includes("/") || /\.(?:ts|mts|js|mjs)$/.test(nameOrPath);
}

/**
 * A scenario by name (`scenarios/<name>.ts`), or by path to a file of the user's, resolved against
 * `cwd`; either way the file's default export is the scenario.
 */
export async function loadScenario(
  nameOrPath: string,
  dir = SCENARIOS_DIR,
  cwd = process.cwd(),
): Promise<ScenarioDefinition> {
  if (isScenarioPath(nameOrPath)) return loadScenarioFile(nameOrPath, cwd);
  const names = await scenarioNames(dir);
  if (!names.includes(nameOrPath)) {
    throw new UnknownScenarioError(
      `no scenario named ${JSON.stringify(nameOrPath)}; there are: ${names.join(", ")} (or give a file: ./my-scenario.ts)`,
    );
  }
  const module = (await import(pathToFileURL(join(dir, `${nameOrPath}.ts`)).href)) as {
    default?: ScenarioDefinition;
  };
  if (!module.default) throw new UnknownScenarioError(`scenarios/${nameOrPath}.ts has no default export`);
  return module.default;
}

/**
 * A scenario file of the user's, resolved against `cwd`. Its default export is checked as a scenario, so a
 * plain object written without `defineScenario` fails here, in the scenario's own words.
 */
export async function loadScenarioFile(path: string, cwd = process.cwd()): Promise<ScenarioDefinition> {
  const file = resolve(cwd, path);
  const found = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!found) throw new UnknownScenarioError(`no scenario file ${path} (looked for ${file})`);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    // defineScenario's own complaint (the installed package's class, so matched by name) is the user's to read as is.
    if (error instanceof Error && error.name === "ScenarioInputError") throw error;
    throw new UnknownScenarioError(
      `${path} could not be loaded: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (module.default === undefined) {
    throw new UnknownScenarioError(
      `${path} has no default export: end it with export default defineScenario({ ... })`,
    );
  }
  checkScenario(module.default);
  return module.default;
}
