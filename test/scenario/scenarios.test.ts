import { describe, expect, it } from "vitest";
import { loadScenario, runScenario } from "../../src/scenario/index.ts";

// The shipped scenarios, shortened: each must hold its thresholds and every money invariant.
describe.each(["per-request", "sessions", "payout-split", "metered"])("scenario %s", (name) => {
  it("passes on a fresh stack", async () => {
    const report = await runScenario(await loadScenario(name), { durationMs: 2_000, progress: false });
    const failed = [...report.thresholds.filter((t) => !t.ok), ...report.invariants.filter((i) => !i.ok)];
    expect(failed).toEqual([]);
    expect(report.outcomes.paid).toBeGreaterThan(0);
    if (name === "sessions") {
      expect(report.outcomes.session).toBeGreaterThan(report.outcomes.paid ?? 0);
      expect(
        report.invariants.find((i) => i.name === "no agent paid a resource twice (on chain)"),
      ).toMatchObject({
        ok: true,
        detail: `${report.outcomes.paid} transfers, each agent to each payee at most once`,
      });
    }
    if (name === "metered") {
      // Metered below the maximum: the payers were charged less than they signed for, exactly as metered.
      expect(report.invariants.map((i) => i.name)).toContain(
        "no payment charged more than its payer signed for",
      );
      expect(report.chain.settlements).toBe(report.outcomes.paid);
    }
    if (name === "payout-split") {
      expect(report.invariants.map((i) => i.name)).toContain("payout splitters hold no funds");
    }
  });
});
