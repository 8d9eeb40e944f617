import { describe, expect, it } from "vitest";
import { formatSummary, loadScenario, runScenario } from "../../src/scenario/index.ts";

// The shipped scenarios, shortened: each must hold its thresholds and every money invariant.
describe.each(["per-request", "sessions", "payout-split", "metered", "channels"])("scenario %s", (name) => {
  it("passes on a fresh stack", async () => {
    const report = await runScenario(await loadScenario(name), { durationMs: 2_000, progress: false });
    const failed = [...report.thresholds.filter((t) => !t.ok), ...report.invariants.filter((i) => !i.ok)];
    expect(failed).toEqual([]);
    expect(report.outcomes.paid).toBeGreaterThan(0);
    const byPath = report.latencyByPath ?? {};
    if (name === "per-request") {
      // One kind of request: the phase table says it all.
      expect(formatSummary(report)).not.toContain("e2e by kind");
    }
    if (name === "sessions") {
      // SIWX agents (the even half of 20) pay each of three resources once; the odd half deposit once each.
      const settled = byPath["exact/eip3009"]?.count ?? 0;
      const vouchers = byPath["batch-settlement/eip3009"]?.count ?? 0;
      expect(settled).toBe(30);
      expect(vouchers).toBe((report.outcomes.paid ?? 0) - settled);
      expect(report.outcomes.session).toBeGreaterThan(settled);
      expect(
        report.invariants.find((i) => i.name === "no agent paid a resource twice (on chain)"),
      ).toMatchObject({
        ok: true,
        detail: `${settled} payments and 10 channel deposits, each agent to each payee or channel at most once`,
      });
      expect(
        report.invariants.find((i) => i.name === "channel vouchers equal claims equal settlements"),
      ).toEqual({
        name: "channel vouchers equal claims equal settlements",
        ok: true,
        detail: `${vouchers} voucher payments charged ${vouchers * 1_000}, 10 channels claimed ${vouchers * 1_000}, settled ${vouchers * 1_000}, receivers got ${vouchers * 1_000} (USDC base units)`,
      });
      const summary = formatSummary(report);
      expect(summary).toMatch(/e2e by kind\s+count\s+p50/);
      expect(summary).toMatch(new RegExp(`\\n  session\\s+${report.outcomes.session}\\s`));
      expect(summary).toMatch(new RegExp(`\\n  paid batch-settlement/eip3009\\s+${vouchers}\\s`));
    }
    if (name === "channels") {
      // Vouchers only: no per-request settlement, every charge claimed and settled, every deposit refunded.
      const paid = report.outcomes.paid ?? 0;
      expect(report.chain.settlements).toBe(0);
      expect(byPath).toEqual({ "batch-settlement/eip3009": expect.objectContaining({ count: paid }) });
      expect(report.invariants.map((i) => i.name)).toEqual(
        expect.arrayContaining([
          "channel vouchers equal claims equal settlements",
          "each payer's channels were claimed exactly what its vouchers charged",
          "every channel deposit is accounted for",
          "each payer lost to its channels exactly what they kept",
          "every channel was refunded down to its claims",
        ]),
      );
      expect(
        report.invariants.find((i) => i.name === "every channel deposit is accounted for")?.detail,
      ).toMatch(
        new RegExp(
          `^deposited 200000000 = claimed ${paid * 1_000} \\+ refunded ${200_000_000 - paid * 1_000} \\+ withdrawn 0 \\+ left 0 `,
        ),
      );
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
