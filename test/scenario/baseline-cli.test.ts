import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunReport } from "../../src/scenario/index.ts";
import { killStarted, startCli } from "../support/scenario.ts";

afterEach(killStarted);

async function cli(args: string[]) {
  const started = startCli(["scenario", ...args]);
  const { code } = await started.exited;
  return { code, ...started.output };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "baseline-cli-"));
});

/** The report with every latency `factor` times what was measured: a run this much slower or faster. */
function scaled(report: RunReport, factor: number): RunReport {
  const e2e = report.latency.e2e;
  if (!e2e) throw new Error("the run measured no e2e latency");
  return {
    ...report,
    runId: `scaled-${factor}`,
    latency: {
      ...report.latency,
      e2e: { ...e2e, p50: e2e.p50 * factor, p90: e2e.p90 * factor, p99: e2e.p99 * factor },
    },
    distribution: report.distribution.map((b) => ({ le: b.le * factor, count: b.count })),
  };
}

describe("x402-devnet scenario --baseline", () => {
  it.each([
    [
      ["--baseline", "/nonexistent/base.json"],
      /--baseline \/nonexistent\/base\.json cannot be read: no such file/,
    ],
    [["--baseline", "/nonexistent/base.json", "--find-capacity"], /--find-capacity runs many/],
  ])("%j: exit 2 and one line before anything starts", async (args, message) => {
    const { code, stdout, stderr } = await cli(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it("refuses a report of another scenario, and one that is not a run report", async () => {
    const other = join(dir, "other.json");
    await writeFile(
      other,
      JSON.stringify({ scenario: "sessions", distribution: [], latency: {}, throughput: {}, requests: 0 }),
    );
    const refused = await cli(["per-request", "--baseline", other]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is a report of scenario sessions, not per-request/);
    const capacity = join(dir, "capacity.json");
    await writeFile(capacity, JSON.stringify({ scenario: "per-request", steps: [] }));
    const notReport = await cli(["--baseline", capacity]);
    expect(notReport.code).toBe(2);
    expect(notReport.stderr).toMatch(/is not a run report/);
  });

  it("compares a run with a baseline: exit 0 against a much slower one, 1 against a much faster one", async () => {
    const first = join(dir, "first.json");
    // instant: enough requests in 4 s for the rank test to judge (it needs 100 a side).
    const run = ["--agents", "5", "--duration", "4s", "--profile", "instant"];
    expect((await cli([...run, "--json", first])).code).toBe(0);
    const measured = JSON.parse(await readFile(first, "utf8")) as RunReport;

    // Sixteen times either way: more than the 6× swing seen between identical runs on a loaded machine.
    const slow = join(dir, "slow.json");
    await writeFile(slow, JSON.stringify(scaled(measured, 16)));
    const now = join(dir, "now.json");
    const html = join(dir, "now.html");
    const better = await cli([...run, "--baseline", slow, "--json", now, "--html", html]);
    expect(better.code).toBe(0);
    expect(better.stdout).toMatch(/against baseline .*slow\.json .*: no regression/);
    expect(better.stdout).toMatch(/e2e latency \(median\) \(ms\).*improved/);
    expect(better.stdout).toMatch(/HTTP round trips|e2e p99/);
    const report = JSON.parse(await readFile(now, "utf8")) as RunReport;
    expect(report.comparison?.regressed).toBe(false);
    expect(report.comparison?.rows[0]).toMatchObject({ metric: "e2e latency (median)", verdict: "improved" });
    expect(report.comparison?.baseline).toMatchObject({ runId: "scaled-16", file: slow });
    expect(await readFile(html, "utf8")).toContain('<table id="comparison">');

    const fast = join(dir, "fast.json");
    await writeFile(fast, JSON.stringify(scaled(measured, 1 / 16)));
    const worse = await cli([...run, "--baseline", fast]);
    expect(worse.code).toBe(1);
    expect(worse.stdout).toMatch(/against baseline .*fast\.json .*: REGRESSED/);
    expect(worse.stdout).toMatch(/e2e latency \(median\) \(ms\).*REGRESSED/);
    // The run itself held: only the comparison failed it.
    expect(worse.stdout).toMatch(/^per-request: PASS/m);
  });
});
