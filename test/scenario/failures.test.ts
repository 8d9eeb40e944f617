import { describe, expect, it } from "vitest";
import failures from "../../scenarios/failures.ts";
import { runScenario } from "../../src/scenario/index.ts";

describe("the failures scenario", () => {
  it("ends every injected fault as a user should see it, and no money is lost", async () => {
    const report = await runScenario(failures, { progress: false });

    // Every case ran, in order, and observed what it expected (the message names the ones that did not).
    expect(report.cases?.map((c) => c.name)).toEqual(failures.cases?.map((c) => c.name));
    const wrong = (report.cases ?? [])
      .filter((c) => !c.ok)
      .map((c) => `${c.name}: expected "${c.expected}", observed "${c.observed}"`);
    expect(wrong).toEqual([]);

    // Never served unpaid, never charged without service, nothing settled twice.
    const broken = report.invariants.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}`);
    expect(broken).toEqual([]);
    expect(report.chain.settlements).toBeGreaterThan(0);
    expect(report.ok).toBe(true);
  }, 120_000);
});
