import { describe, expect, it } from "vitest";
import { findCapacity, formatCapacity, renderCapacityHtml } from "../../src/scenario/index.ts";
import { smallScenario } from "../support/scenario.ts";

describe("findCapacity on a real stack", () => {
  it("summarises each step from what its run measured, and the summary survives JSON", async () => {
    const result = await findCapacity(smallScenario(3, 1_000), {
      startRate: 4,
      factor: 2,
      stepDurationMs: 1_000,
      maxSteps: 2,
      progress: false,
    });

    expect(result).toMatchObject({ scenario: "small", highestRate: 8, stoppedBy: "max-steps" });
    expect(result.steps.map((s) => [s.rate, s.ok, s.failed])).toEqual([
      [4, true, []],
      [8, true, []],
    ]);
    for (const step of result.steps) {
      expect(step.requests).toBeGreaterThan(0);
      expect(step.achieved).toBeGreaterThan(0);
      expect(step.paid).toBe(step.achieved);
      expect(step.errors).toBe(0);
      expect(step.durationMs).toBeGreaterThan(0);
      expect(step.p50).toBeGreaterThan(0);
      expect(step.p99).toBeGreaterThanOrEqual(step.p50 ?? 0);
      expect(step.thresholds).toEqual([{ expr: "errors.rate < 0.01", actual: 0, ok: true }]);
      expect(step.brokenInvariants).toEqual([]);
    }
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(formatCapacity(result)).toMatch(/^small: highest rate that held 8\/s\n/);
    expect(renderCapacityHtml(result)).toContain('<div id="verdict">8/s</div>');
  });
});
