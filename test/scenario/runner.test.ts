import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startDevnet } from "../../src/chain/index.ts";
import { defineScenario, type RunReport, runScenario } from "../../src/scenario/index.ts";
import { scenarioCli, smallScenario } from "../support/scenario.ts";

const small = smallScenario(4, 1_500);

describe("runScenario", () => {
  it("runs agents against a fresh stack and checks the money invariants on chain", async () => {
    const report = await runScenario(small, {
      progress: false,
      thresholds: ["outcomes.paid > 5", "e2e.p50 < 0.001ms"],
    });
    expect(report.outcomes.paid).toBeGreaterThan(5);
    expect(report.requests).toBe(report.outcomes.paid);
    expect(report.latency.e2e?.count).toBe(report.requests);
    expect(report.latency.sign?.count).toBe(report.outcomes.paid);
    expect(report.chain.settlements).toBe(report.outcomes.paid);
    expect(report.chain.endBlock).toBeGreaterThan(report.chain.startBlock);
    expect(report.invariants.length).toBeGreaterThanOrEqual(5);
    expect(report.invariants.every((i) => i.ok)).toBe(true);
    // The impossible threshold fails the run, the others hold.
    expect(report.thresholds.map((t) => t.ok)).toEqual([true, true, false]);
    expect(report.ok).toBe(false);
    expect(report.throughput.timeline.length).toBeGreaterThanOrEqual(1);
  });

  it("gives the same arrival schedule for the same seed (open model)", async () => {
    const open = { ...small, load: { kind: "open" as const, stages: [{ durationMs: 1_000, rate: 20 }] } };
    const [a, b] = [
      await runScenario(open, { progress: false, seed: 9 }),
      await runScenario(open, { progress: false, seed: 9 }),
    ];
    expect(a.requests).toBe(b.requests);
    expect(a.requests).toBeGreaterThan(5);
  });
});

describe("npm run scenario", () => {
  it("lists the scenarios", async () => {
    const { code, stdout } = await scenarioCli(["--list"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^per-request\s+\S/m);
  });

  it("exits 0 when thresholds and invariants hold, and writes JSON and HTML reports", async () => {
    const dir = await mkdtemp(join(tmpdir(), "x402-report-"));
    const { code, stdout } = await scenarioCli([
      "per-request",
      "--agents",
      "3",
      "--duration",
      "1s",
      "--json",
      join(dir, "r.json"),
      "--html",
      join(dir, "r.html"),
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/per-request: PASS/);
    const report = JSON.parse(await readFile(join(dir, "r.json"), "utf8")) as RunReport;
    expect(report).toMatchObject({ scenario: "per-request", ok: true, seed: 1 });
    for (const key of [
      "config",
      "startedAt",
      "durationMs",
      "requests",
      "outcomes",
      "latency",
      "throughput",
      "errors",
      "chain",
      "thresholds",
      "invariants",
    ]) {
      expect(report).toHaveProperty(key);
    }
    expect(await readFile(join(dir, "r.html"), "utf8")).toMatch(/<html/);
  });

  it("exits 1 when a threshold fails", async () => {
    const { code, stdout } = await scenarioCli([
      "--agents",
      "2",
      "--duration",
      "1s",
      "--threshold",
      "e2e.p99 < 0.001ms",
    ]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/✗ e2e.p99 < 0.001ms/);
  });

  it.each([
    [["--threshold", "e2e.p99 <<< 5"], /cannot read threshold/],
    [["no-such-scenario"], /no scenario named "no-such-scenario"/],
    [["--duration", "soon"], /--duration must look like/],
  ])("exits 2 on a harness error %j", async (args, message) => {
    const { code, stderr } = await scenarioCli(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});

describe("a scenario's own invariants", () => {
  it("are checked after the built-in ones with the chain and what was paid; one that fails or throws fails the run", async () => {
    const report = await runScenario(
      defineScenario({
        ...small,
        invariants: [
          {
            name: "every paid response's transaction succeeded on chain",
            check: async ({ devnet, paid, fromBlock, toBlock }) => {
              const receipts = await Promise.all(
                paid.map((p) => devnet.client.getTransactionReceipt({ hash: p.transaction ?? "0x" })),
              );
              const inRun = receipts.every((r) => r.blockNumber >= fromBlock && r.blockNumber <= toBlock);
              return {
                ok: inRun && receipts.every((r) => r.status === "success"),
                detail: `${receipts.length} receipts`,
              };
            },
          },
          {
            name: "more paid than is possible",
            check: ({ report }) => ({ ok: (report.outcomes.paid ?? 0) > 1e9, detail: "on purpose" }),
          },
          {
            name: "a check that throws",
            check: () => {
              throw new Error("no such contract");
            },
          },
        ],
      }),
      { progress: false, durationMs: 500 },
    );
    const own = report.invariants.slice(-3);
    expect(own).toEqual([
      {
        name: "every paid response's transaction succeeded on chain",
        ok: true,
        detail: `${report.outcomes.paid} receipts`,
      },
      { name: "more paid than is possible", ok: false, detail: "on purpose" },
      { name: "a check that throws", ok: false, detail: "threw no such contract" },
    ]);
    expect(report.invariants.slice(0, -3).every((i) => i.ok)).toBe(true);
    expect(report.ok).toBe(false);
  });
});

describe("scenario cases", () => {
  it("runs named cases with fault proxies, heals between them, and compares expected with observed", async () => {
    const report = await runScenario(
      defineScenario({
        name: "cases",
        description: "two cases around a facilitator outage",
        agents: { count: 2 },
        faults: { facilitator: true },
        cases: [
          {
            name: "facilitator down",
            expected: "502 unexpected_verify_error",
            run: async ({ stack, request }) => {
              await stack.proxies.facilitator?.setFaults({ down: true });
              const result = await request(0, "/weather");
              return `${result.status} ${result.errorCode}`;
            },
          },
          {
            name: "healed afterwards",
            expected: "200 paid",
            run: async ({ request }) => {
              const result = await request(1, "/weather");
              return `${result.status} ${result.outcome}`;
            },
          },
          { name: "a case that is wrong on purpose", expected: "200 paid", run: async () => "402 nothing" },
        ],
      }),
      { progress: false },
    );
    expect(report.cases).toEqual([
      {
        name: "facilitator down",
        expected: "502 unexpected_verify_error",
        observed: "502 unexpected_verify_error",
        ok: true,
      },
      { name: "healed afterwards", expected: "200 paid", observed: "200 paid", ok: true },
      { name: "a case that is wrong on purpose", expected: "200 paid", observed: "402 nothing", ok: false },
    ]);
    expect(report.invariants.every((i) => i.ok)).toBe(true);
    expect(report.ok).toBe(false);
  });
});

describe("scenario on a fork", () => {
  it("runs against a fork of another chain (a local devnet standing in for Base)", async () => {
    const upstream = await startDevnet({ accounts: 1 });
    try {
      const report = await runScenario(small, {
        progress: false,
        forkUrl: upstream.rpcUrl,
        durationMs: 1_000,
      });
      expect(report.outcomes.paid).toBeGreaterThan(0);
      expect(report.invariants.every((i) => i.ok)).toBe(true);
      // The fork settled; the upstream did not move.
      expect(await upstream.client.getBlockNumber({ cacheTime: 0 })).toBeLessThan(
        report.chain.startBlock + 1,
      );
    } finally {
      await upstream.stop();
    }
  });
});
