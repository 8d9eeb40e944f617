import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defineScenario, runScenario } from "../src/scenario/index.ts";
import { killStarted, startCli } from "./support/scenario.ts";

afterEach(killStarted);

async function run(args: string[]) {
  const cli = startCli(args);
  const { code } = await cli.exited;
  return { code, ...cli.output };
}

describe("--hardfork, --profile and --history: bad input", () => {
  const scenarioHelp = "(see x402-devnet scenario --help)";
  const upHelp = "(see x402-devnet up --help)";
  it.each([
    [
      ["up", "--hardfork", "shanghai"],
      `--hardfork must be one of cancun, prague, osaka, got shanghai ${upHelp}`,
    ],
    [
      ["up", "--hardfork", "amsterdam"],
      `--hardfork must be one of cancun, prague, osaka, got amsterdam ${upHelp}`,
    ],
    [
      ["up", "--hardfork"],
      `--hardfork needs a value; one that starts with a dash is written --hardfork=VALUE ${upHelp}`,
    ],
    [["up", "--profile", "fast"], `--profile must be one of instant, base, flashblocks, got fast ${upHelp}`],
    [
      ["scenario", "--hardfork", "pectra"],
      `--hardfork must be one of cancun, prague, osaka, got pectra ${scenarioHelp}`,
    ],
    [
      ["scenario", "--profile", "fast"],
      `--profile must be one of instant, base, flashblocks, got fast ${scenarioHelp}`,
    ],
    [["up", "--history", "archive"], `--history must be one of full, pruned, got archive ${upHelp}`],
    [["scenario", "--history", "none"], `--history must be one of full, pruned, got none ${scenarioHelp}`],
    [
      ["scenario", "--history", "full", "--rpc-url", "http://127.0.0.1:9"],
      "--history chooses the devnet a run starts; with --rpc-url the run uses one already running: pass --history to `x402-devnet up` instead",
    ],
    [
      ["scenario", "--hardfork", "prague", "--rpc-url", "http://127.0.0.1:9"],
      "--hardfork chooses the devnet a run starts; with --rpc-url the run uses one already running: pass --hardfork to `x402-devnet up` instead",
    ],
    [
      ["scenario", "--profile", "base", "--server-url", "http://127.0.0.1:9/weather"],
      "--profile chooses the devnet a run starts; with --server-url the run uses one already running: pass --profile to `x402-devnet up` instead",
    ],
  ])("%j: exit 2 and one line on stderr", async (args, message) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(`x402-devnet: ${message}\n`);
  });
});

describe("x402-devnet up --hardfork", () => {
  it("runs the rules asked for (in any case), under the profile's block time, and says so when ready", async () => {
    const cli = startCli([
      "up",
      ...["--port", "0", "--facilitator-port", "0", "--server-port", "0", "--accounts", "1"],
      ...["--profile", "flashblocks", "--hardfork", "Prague"],
    ]);
    const [line] = await cli.waitFor("stdout", /^\{.*\}\n/);
    const ready = JSON.parse(line) as { hardfork: string };
    expect(ready.hardfork).toBe("prague");
    await cli.waitFor("stderr", /0\.2 s blocks {3}prague rules/);
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(0);
  });
});

describe("a run's --profile and --hardfork", () => {
  it("reach the devnet the run starts, over the scenario's own", async () => {
    const seen: { hardfork?: string; profile?: string; blockTime?: number } = {};
    const scenario = defineScenario({
      name: "rules",
      description: "which rules the run's devnet has",
      devnet: { profile: "base", hardfork: "osaka" },
      agents: { count: 1 },
      target: "/weather",
      load: { kind: "closed", durationMs: 500 },
      invariants: [
        {
          name: "the devnet is the one asked for",
          check: ({ devnet }) => {
            Object.assign(seen, {
              hardfork: devnet.hardfork,
              profile: devnet.profile,
              blockTime: devnet.blockTime,
            });
            return { ok: true, detail: "" };
          },
        },
      ],
    });
    const report = await runScenario(scenario, {
      progress: false,
      devnet: { profile: "flashblocks", hardfork: "prague" },
    });
    expect(report.ok).toBe(true);
    expect(seen).toEqual({ hardfork: "prague", profile: "flashblocks", blockTime: 0.2 });
  });

  it("the CLI passes them on: a flashblocks run reports 0.2 s blocks", async () => {
    const json = join(tmpdir(), `x402-hardfork-${process.pid}.json`);
    const { code, stderr } = await run([
      "scenario",
      ...["--agents", "2", "--duration", "1s", "--profile", "flashblocks", "--hardfork", "cancun"],
      ...["--json", json],
    ]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as { config: { devnet: { blockTime?: number } } };
    expect(report.config.devnet.blockTime).toBe(0.2);
  });
});
