import { afterEach, describe, expect, it } from "vitest";
import { killStarted, startCli } from "./support/scenario.ts";

afterEach(killStarted);

async function run(args: string[]) {
  const cli = startCli(args);
  const { code } = await cli.exited;
  return { code, ...cli.output };
}

describe("x402-devnet help", () => {
  const upOnly = /--facilitator-port P/;
  const scenarioOnly = /--agents N/;
  it.each([
    [["up", "--help"], "Usage: x402-devnet up [options]", upOnly, scenarioOnly],
    [["up", "-h"], "Usage: x402-devnet up [options]", upOnly, scenarioOnly],
    // Help answers even next to another mistake.
    [["up", "--port", "-1", "--help"], "Usage: x402-devnet up [options]", upOnly, scenarioOnly],
    [["scenario", "--help"], "Usage: x402-devnet scenario [NAME | FILE] [options]", scenarioOnly, upOnly],
    [["scenario", "-h"], "Usage: x402-devnet scenario [NAME | FILE] [options]", scenarioOnly, upOnly],
    [["--help"], "Usage: x402-devnet <command> [options]", /x402-devnet <command> --help/, /--agents/],
    [["artillery", "--help"], "Usage: x402-devnet artillery [NAME | FILE] [options]", /--workers N/, upOnly],
  ])("%j prints that command's help and exits 0", async (args, heading, has, hasNot) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(0);
    expect(stdout.startsWith(`${heading}\n`)).toBe(true);
    expect(stdout).toMatch(has);
    expect(stdout).not.toMatch(hasNot);
    expect(stderr).toBe("");
  });
});

describe("x402-devnet bad input", () => {
  const scenarioHelp = "(see x402-devnet scenario --help)";
  const upHelp = "(see x402-devnet up --help)";
  const artilleryHelp = "(see x402-devnet artillery --help)";
  it.each([
    [["scenario", "--agents", "-3"], `--agents must be a positive integer, got -3 ${scenarioHelp}`],
    [["scenario", "--agents=-3"], `--agents must be a positive integer, got -3 ${scenarioHelp}`],
    [["scenario", "--rate", "-1.5"], `--rate must be a positive number, got -1.5 ${scenarioHelp}`],
    [
      ["scenario", "--duration", "-5s"],
      `--duration must look like 30s, 2m or 500ms, got -5s ${scenarioHelp}`,
    ],
    [
      ["scenario", "--agents"],
      `--agents needs a value; one that starts with a dash is written --agents=VALUE ${scenarioHelp}`,
    ],
    [["scenario", "--bogus"], `unknown option --bogus ${scenarioHelp}`],
    [["scenario", "a", "b"], `one scenario at a time, got a, b ${scenarioHelp}`],
    [["up", "--port", "-1"], `--port must be a port from 0 to 65535 (0 takes a free one), got -1 ${upHelp}`],
    [
      ["up", "--server-port", "70000"],
      `--server-port must be a port from 0 to 65535 (0 takes a free one), got 70000 ${upHelp}`,
    ],
    [["up", "--accounts", "0"], `--accounts must be a positive integer, got 0 ${upHelp}`],
    [["up", "--block-time", "-0.5"], `--block-time must be a positive number, got -0.5 ${upHelp}`],
    [["up", "now"], `up takes no arguments, got now ${upHelp}`],
    [["launch"], `unknown command "launch" (see x402-devnet --help)`],
    [["artillery", "--workers", "0"], `--workers must be a positive integer, got 0 ${artilleryHelp}`],
    [["artillery", "--bogus"], `unknown option --bogus ${artilleryHelp}`],
    [
      ["artillery", "--write", "dir"],
      `--write needs --server-url and --rpc-url: the server and chain the cloud workers will reach ${artilleryHelp}`,
    ],
    [
      ["artillery", "--write", "dir", "--out", "other"],
      `--write writes the files and stops; --out keeps those of a local run: one or the other ${artilleryHelp}`,
    ],
    [
      ["artillery", "--rate", "2.5"],
      `Artillery's phases take whole arrivals per second, and divide them among its workers; a rate of 2.5/s cannot be given: use a whole rate ${artilleryHelp}`,
    ],
    [["artillery", "report"], `artillery report takes one file: Artillery's JSON report ${artilleryHelp}`],
    [
      ["artillery", "report", "r.json"],
      `artillery report needs --script, the script the run used ${artilleryHelp}`,
    ],
    [
      ["artillery", "channels"],
      `scenario channels cannot run on Artillery: it has an afterLoad step that needs the agents in this process; it has invariants of its own that read the agents. Run it with \`x402-devnet scenario channels\` instead. ${artilleryHelp}`,
    ],
  ])("%j: exit 2 and one line on stderr", async (args, message) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(`x402-devnet: ${message}\n`);
  });

  it("a setting the scenario cannot honour is refused before anything starts", async () => {
    const { code, stderr } = await run(["scenario", "failures", "--agents", "3"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^x402-devnet: scenario failures needs exactly \d+ agents .*--agents 3 cannot be honoured/,
    );
    expect(stderr.split("\n")).toHaveLength(2);
  });

  it("a scenario that injects reorgs is refused on a profile that runs as a fork", async () => {
    const { code, stderr } = await run(["scenario", "failures", "--profile", "flashblocks"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^x402-devnet: scenario failures injects reorgs, .*--profile flashblocks runs as a fork of an empty chain .*: run it on --profile instant/,
    );
  });

  it("a setting the scenario ignores is said on stderr before the run", async () => {
    // The unwritable report path ends the run before it starts, after the notice.
    const { code, stderr } = await run([
      "scenario",
      "failures",
      "--duration",
      "1s",
      "--json",
      "/nonexistent/r.json",
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^x402-devnet: --duration ignored: scenario failures has no load/);
  });
});
