import { describe, expect, it } from "vitest";
import type { CapacityResult, CapacityStep } from "../../src/scenario/capacity.ts";
import { costOf } from "../../src/scenario/cost.ts";
import { renderCapacityHtml } from "../../src/scenario/report-html.ts";

const step = (rate: number, ok: boolean, phase: "ramp" | "bisect", settle: number): CapacityStep => ({
  rate,
  achieved: rate,
  paid: rate,
  requests: rate * 3,
  errors: 0,
  durationMs: 3_000,
  p50: 20,
  p99: ok ? 200 : 400,
  ok,
  failed: ok ? [] : ["e2e.p99 < 250ms"],
  thresholds: [{ expr: "e2e.p99 < 250ms", actual: ok ? 200 : 400, ok }],
  brokenInvariants: [],
  phase,
  phases: {
    challenge: { p50: 2, p99: 4 },
    verify: { p50: 3, p99: 6 },
    settle: { p50: settle, p99: settle * 3 },
  },
  cpu: { harness: 0.9, anvil: 0.4, cores: 2, machine: 1.4 },
  chain: { settlements: rate * 3, transactions: rate * 2, gasUsed: String(rate * 3 * 70_000) },
});

/** A ramp to 113/s that failed, then bisection down to a knee at 91/s. */
function bisected(): CapacityResult {
  const knee = step(91, true, "bisect", 9);
  return {
    scenario: "per-request",
    description: "every request pays",
    startedAt: "2025-06-01T12:00:00.000Z",
    settings: {
      startRate: 50,
      factor: 1.5,
      stepDurationMs: 3_000,
      maxSteps: 12,
      bisectSteps: 4,
      tolerance: 0.05,
      warmupMs: 2_000,
      trials: 3,
    },
    highestRate: 91,
    stoppedBy: "failure",
    steps: [
      step(50, true, "ramp", 6),
      step(75, true, "ramp", 7),
      {
        ...step(113, false, "ramp", 80),
        trials: [
          { ok: false, achieved: 110, p50: 20, p99: 300, failed: ["e2e.p99 < 250ms"] },
          { ok: true, achieved: 113, p50: 12, p99: 80, failed: [] },
          { ok: false, achieved: 109, p50: 22, p99: 320, failed: ["e2e.p99 < 250ms"] },
        ],
      },
      step(94, false, "bisect", 40),
      step(84, true, "bisect", 8),
      knee,
    ],
    limit: { resource: "chain", reason: "settlement grew most", rate: 94 },
    notes: ["other processes kept 1 of 2 cores busy on average"],
    cost: costOf({
      durationMs: knee.durationMs,
      chain: {
        startBlock: 0,
        endBlock: 1,
        settlements: 273,
        settlementTransactions: 182,
        gasUsed: String(273 * 70_000),
      },
    }),
  };
}

const text = (html: string) => html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");

describe("renderCapacityHtml with bisection, limit and cost", () => {
  it("tells ramp from bisection steps, and names the knee, the limit and the cost", () => {
    const html = renderCapacityHtml(bisected());
    const rows = html.slice(
      html.indexOf('<table id="steps"'),
      html.indexOf("</table>", html.indexOf('<table id="steps"')),
    );
    const cells = [
      ...rows.matchAll(/<tr[^>]*><td[^>]*>.*?<\/td><td>(ramp|bisect)<\/td><td class="num">([\d.]+\/s)/g),
    ].map((m) => `${m[1]} ${m[2]}`);
    expect(cells).toEqual([
      "ramp 50/s",
      "ramp 75/s",
      "ramp 113/s",
      "bisect 94/s",
      "bisect 84/s",
      "bisect 91/s",
    ]);
    expect(text(rows)).toContain("0.9 / 0.4 / 1.4");
    expect(text(rows)).toContain("70,000 gas ×1.5");
    expect(text(rows)).toContain("(2 of 3 runs failed; p99 300, 80, 320 ms)");

    expect(html).toContain('<div id="verdict">91/s</div>');
    expect(text(html)).toContain(
      "stopped at 113/s, the first rate that failed; 3 bisection steps found the knee below it",
    );
    expect(text(html)).toContain("3 ramp (at most 12) and 3 bisection (at most 4)");
    // The lowest rate that failed above the knee, not the ramp's.
    expect(text(html)).toMatch(/Failed at 94\/s/);

    const limit = html.slice(html.indexOf('<p id="limit">'));
    expect(text(limit)).toMatch(/^ chain : settlement grew most/);
    expect(text(limit)).toMatch(/settle 9\.00 ms 40\.0 ms/);
    expect(text(limit)).toContain("other processes kept 1 of 2 cores busy on average");

    const cost = html.slice(html.indexOf('<table id="cost"'));
    expect(text(cost)).toContain("gas per settlement (measured) 70,000");
    expect(text(cost)).toContain("273 in 182 transactions (1.5 per transaction)");
    expect(text(cost)).toContain("$3000/ETH; L2 0.01 gwei");
  });

  it("leaves the limit and cost out of a search that has none", () => {
    const { limit: _limit, cost: _cost, notes: _notes, ...plain } = bisected();
    const html = renderCapacityHtml(plain);
    expect(html).not.toContain('id="limit"');
    expect(html).not.toContain('id="cost"');
  });
});
