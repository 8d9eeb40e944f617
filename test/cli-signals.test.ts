import { existsSync, mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { afterEach, describe, expect, it } from "vitest";
import {
  killStarted,
  portIsFree,
  processesOf,
  startCli,
  startProcess,
  untilGone,
} from "./support/scenario.ts";

afterEach(killStarted);

const PROGRESS = /elapsed, \d+s left\n/;

/** A run long enough that only a signal ends it within the test. */
const LONG_RUN = ["scenario", "--agents", "2", "--duration", "120s"];

describe("x402-devnet scenario stopped by a signal", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)(
    "on %s finishes the requests in flight, prints the summary, writes the reports and exits %i",
    async (signal, exitCode) => {
      const dir = mkdtempSync(join(tmpdir(), "x402-cli-"));
      const json = join(dir, "report.json");
      const html = join(dir, "report.html");
      const cli = startCli([...LONG_RUN, "--json", json, "--html", html]);
      await cli.waitFor("stderr", PROGRESS);
      cli.child.kill(signal);
      const { code } = await cli.exited;

      expect(code).toBe(exitCode);
      expect(cli.output.stderr).toMatch(/stopping: finishing requests in flight, then reporting/);
      // The summary, and never a pass.
      expect(cli.output.stdout).toMatch(/^per-request: INTERRUPTED /);
      expect(cli.output.stdout).toMatch(/invariants/);
      const report = JSON.parse(await readFile(json, "utf8")) as { interrupted: boolean; ok: boolean };
      expect(report).toMatchObject({ interrupted: true, ok: false });
      expect(existsSync(html)).toBe(true);
      await untilGone(cli.child.pid as number, 5_000);
    },
  );

  it("on a Ctrl-C typed in a terminal (SIGINT to the whole foreground group) still checks the chain", async () => {
    const dir = mkdtempSync(join(tmpdir(), "x402-cli-"));
    const json = join(dir, "report.json");
    const cli = startCli([...LONG_RUN, "--json", json]);
    await cli.waitFor("stderr", PROGRESS);
    // The CLI leads its own group here, as a shell's foreground job does: -pid reaches every member.
    process.kill(-(cli.child.pid as number), "SIGINT");
    const { code } = await cli.exited;

    expect(code).toBe(130);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      interrupted: boolean;
      error?: unknown;
      invariants: { ok: boolean }[];
    };
    expect(report.error).toBeUndefined();
    expect(report.interrupted).toBe(true);
    expect(report.invariants.length).toBeGreaterThan(0);
    expect(report.invariants.every((i) => i.ok)).toBe(true);
    await untilGone(cli.child.pid as number, 5_000);
  });

  it("exits at once on a second Ctrl-C, leaving no anvil behind", async () => {
    const cli = startCli(LONG_RUN);
    await cli.waitFor("stderr", PROGRESS);
    const anvil = processesOf(cli.child.pid as number).find((p) => p.command === "anvil");
    expect(anvil?.ppid).toBe(cli.child.pid);

    cli.child.kill("SIGINT");
    // Two signals sent back to back may reach the process as one: the second follows the first's answer.
    await cli.waitFor("stderr", /stopping:/);
    cli.child.kill("SIGINT");
    const { code } = await cli.exited;

    expect(code).toBe(130);
    expect(cli.output.stderr).toMatch(/SIGINT again: exiting now/);
    expect(cli.output.stdout).toBe("");
    await untilGone(cli.child.pid as number, 5_000);
  });
});

/** npm run's output: its banner, then the command's. */
const READY = /^\{"event":"ready".*\}$/m;

describe("started through npm", () => {
  it("`npm run up`, its npm killed with SIGTERM, stops the stack: no node process, no anvil, ports closed", async () => {
    const npm = startProcess("npm", [
      "run",
      "up",
      "--",
      "--port",
      String(await getPort()),
      "--facilitator-port",
      String(await getPort()),
      "--server-port",
      String(await getPort()),
      "--accounts",
      "1",
    ]);
    const [line] = await npm.waitFor("stdout", READY);
    const ready = JSON.parse(line) as { rpcUrl: string; facilitatorUrl: string; serverUrl: string };
    const group = npm.child.pid as number;
    expect(processesOf(group).map((p) => p.command)).toEqual(expect.arrayContaining(["node", "anvil"]));

    // npm does not pass the SIGTERM on: the CLI has to notice that its parent is gone.
    npm.child.kill("SIGTERM");
    await untilGone(group, 15_000);
    for (const url of [ready.rpcUrl, ready.facilitatorUrl, ready.serverUrl]) {
      expect(await portIsFree(Number(new URL(url).port))).toBe(true);
    }
    expect(npm.output.stderr).toMatch(/the parent process \(\d+\) is gone/);
  });

  it("`npm run scenario`, its npm killed with SIGTERM, reports the run as interrupted and stops", async () => {
    const json = join(mkdtempSync(join(tmpdir(), "x402-cli-")), "report.json");
    const npm = startProcess("npm", ["run", "scenario", "--", ...LONG_RUN.slice(1), "--json", json]);
    await npm.waitFor("stderr", PROGRESS);

    npm.child.kill("SIGTERM");
    await untilGone(npm.child.pid as number, 15_000);
    const report = JSON.parse(await readFile(json, "utf8")) as { interrupted: boolean; ok: boolean };
    expect(report).toMatchObject({ interrupted: true, ok: false });
  });
});
