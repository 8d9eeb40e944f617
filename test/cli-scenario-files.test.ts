import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { killStarted, startProcess } from "./support/scenario.ts";

afterEach(killStarted);

const REPO = new URL("..", import.meta.url).pathname;

/**
 * A user's project that installed x402-devnet: node_modules/x402-devnet is this repository, so imports of
 * "x402-devnet" go through the package's `exports` (dist/, built on install) as they would from npm.
 */
function userProject(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "x402-project-"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "my-project", type: "module" }));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(REPO, join(dir, "node_modules", "x402-devnet"), "dir");
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** The CLI as the project runs it: its installed bin, from the project's directory. */
async function scenarioIn(dir: string, args: string[]) {
  const cli = startProcess(
    process.execPath,
    [join(dir, "node_modules", "x402-devnet", "src", "bin.js"), "scenario", ...args],
    dir,
  );
  const { code } = await cli.exited;
  return { code, ...cli.output };
}

const SMALL = `import { defineScenario } from "x402-devnet";

export default defineScenario({
  name: "mine",
  description: "two agents for a second",
  agents: { count: 2 },
  load: { kind: "closed", durationMs: 1_000 },
  thresholds: ["errors.rate < 0.01"],
});
`;

describe("x402-devnet scenario FILE", () => {
  it("runs a scenario file of the user's project that imports from x402-devnet", async () => {
    const dir = userProject({ "load/mine.ts": SMALL });
    const { code, stdout, stderr } = await scenarioIn(dir, ["./load/mine.ts"]);
    expect(stderr).not.toMatch(/x402-devnet: /);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^mine: PASS /);
  });

  it("runs the README's example scenario as written, in a user's project", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("#### Writing a scenario"));
    const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toMatch(/from "x402-devnet"/);
    const dir = userProject({ "my-scenario.ts": example as string });
    const { code, stdout, stderr } = await scenarioIn(dir, [
      "my-scenario.ts",
      "--duration",
      "1s",
      "--rate",
      "5",
    ]);
    // Its thresholds are the README's, for its own load: the run has to happen and the money add up.
    expect(stderr).not.toMatch(/x402-devnet: /);
    expect([0, 1]).toContain(code);
    expect(stdout).toMatch(/^my-scenario: (PASS|FAIL) /);
    // The built-in invariants hold; the example's own one ran (whether a second of traffic satisfies it is
    // the README's business).
    for (const invariant of [
      "money in equals money out",
      "no authorization settled twice",
      "every paid response matches exactly one settlement",
    ]) {
      expect(stdout).toContain(`✓ ${invariant}`);
    }
    expect(stdout).toMatch(/[✓✗] the dear route's payee got a tenth of the sales or less/);
  });

  it.each([
    [
      "a missing file",
      {},
      "./nope.ts",
      /^x402-devnet: no scenario file \.\/nope\.ts \(looked for .*nope\.ts\)\n$/,
    ],
    [
      "a file without a default export",
      { "named.ts": `export const scenario = { name: "named" };\n` },
      "named.ts",
      /^x402-devnet: named\.ts has no default export: end it with export default defineScenario\(\{ \.\.\. \}\)\n$/,
    ],
    [
      "a default export that is not a scenario",
      { "plain.mjs": `export default { name: "plain", description: "no agents" };\n` },
      "./plain.mjs",
      /^x402-devnet: scenario plain needs agents: \{ count: N \} \(see x402-devnet scenario --help\)\n$/,
    ],
    [
      "a file that fails to load",
      { "broken.ts": `import { nothing } from "./missing-module.ts";\nexport default nothing;\n` },
      "./broken.ts",
      /^x402-devnet: \.\/broken\.ts could not be loaded: .*missing-module/,
    ],
  ])("refuses %s: exit 2, one line", async (_, files, arg, message) => {
    const { code, stdout, stderr } = await scenarioIn(userProject(files), [arg]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(message);
  });
});
