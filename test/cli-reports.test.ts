import { chmodSync, mkdirSync, mkdtempSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Devnet, startDevnet } from "../src/chain/index.ts";
import { killStarted, scenarioCli, startCli } from "./support/scenario.ts";

let devnet: Devnet | undefined;
afterEach(async () => {
  await killStarted();
  await devnet?.stop();
  devnet = undefined;
});

describe("x402-devnet scenario's report files", () => {
  it("are written when a post-run step fails, and the exit code is 2 naming the step", async () => {
    // Our own chain, attached to, so the test can take it away in the middle of the run.
    devnet = await startDevnet({ accounts: 1 });
    const json = join(mkdtempSync(join(tmpdir(), "x402-cli-")), "report.json");
    const cli = startCli([
      "scenario",
      "--rpc-url",
      devnet.rpcUrl,
      "--agents",
      "2",
      "--duration",
      "6s",
      "--json",
      json,
    ]);
    await cli.waitFor("stderr", /elapsed, \d+s left\n/);
    await devnet.stop();
    const { code } = await cli.exited;

    const report = JSON.parse(await readFile(json, "utf8")) as {
      ok: boolean;
      error?: { step: string; message: string };
    };
    expect(report.ok).toBe(false);
    expect(report.error?.step).toEqual(expect.any(String));
    expect(code).toBe(2);
    expect(cli.output.stdout).toMatch(/^per-request: ERROR /);
    const step = (report.error as { step: string }).step;
    expect(cli.output.stderr).toContain(`x402-devnet: the run's step "${step}" failed: `);
    expect(cli.output.stderr).not.toMatch(/^\s+at /m);
  });

  const dir = mkdtempSync(join(tmpdir(), "x402-cli-"));
  mkdirSync(join(dir, "a-directory"));
  const readOnly = join(dir, "read-only");
  mkdirSync(readOnly);
  chmodSync(readOnly, 0o500);
  // root writes anywhere a mode bit forbids; sysfs refuses it a new file all the same.
  const unwritable = process.getuid?.() === 0 ? "/sys/report.json" : join(readOnly, "report.json");

  it.each([
    [
      "in a missing directory",
      "--json",
      join(dir, "missing", "report.json"),
      /there is no directory .*missing/,
    ],
    ["that is a directory", "--html", join(dir, "a-directory"), /it is a directory/],
    ["without write permission", "--json", unwritable, /permission denied/],
  ])("a report file %s is refused before the run starts: exit 2, one line", async (_, flag, path, why) => {
    const { code, stdout, stderr } = await scenarioCli(["--agents", "1", "--duration", "1s", flag, path]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(new RegExp(`^x402-devnet: ${flag} \\S+ cannot be written: ${why.source}\\n$`));
  });
});
