import { describe, expect, it } from "vitest";
import type { RunReport } from "../../src/scenario/index.ts";
import { evaluateThresholds, parseThreshold, ThresholdSyntaxError } from "../../src/scenario/index.ts";

const report = {
  requests: 1000,
  errors: { invalid_exact_evm_insufficient_balance: 2 },
  outcomes: { paid: 998, payment_failed: 2 },
  throughput: { requests: 200, paid: 199.6, timeline: [] },
  latency: { e2e: { count: 1000, p50: 4, p90: 8, p99: 20, p999: 40, max: 55, mean: 5 } },
} as unknown as Omit<RunReport, "thresholds" | "ok">;

describe("thresholds", () => {
  it.each([
    ["e2e.p99 < 50ms", true, 20],
    ["e2e.p99 < 0.01s", false, 20],
    ["e2e.p(99) <= 20", true, 20],
    ["errors.rate < 0.001", false, 0.002],
    ["errors.rate < 1%", true, 0.002],
    ["throughput.paid > 100/s", true, 199.6],
    ["outcomes.paid >= 998", true, 998],
    ["errors.invalid_exact_evm_insufficient_balance == 0", false, 2],
    ["requests > 10", true, 1000],
    ["outcomes.paid.share > 99%", true, 0.998],
    ["outcomes.payment_failed.share < 0.1%", false, 0.002],
  ])("%s → %s", (expr, ok, actual) => {
    const [result] = evaluateThresholds([parseThreshold(expr)], report);
    expect(result).toEqual({ expr, ok, actual });
  });

  it("fails a threshold on a phase the run never measured", () => {
    expect(evaluateThresholds([parseThreshold("settle.p99 < 5ms")], report)).toEqual([
      { expr: "settle.p99 < 5ms", actual: null, ok: false },
    ]);
  });

  it.each(["e2e.p99", "e2e.p99 << 5", "latency.p99 < 5", "e2e.p42 < 5", "throughput.bogus > 1"])(
    "refuses %j with a clear error",
    (expr) => {
      expect(() => parseThreshold(expr)).toThrow(ThresholdSyntaxError);
    },
  );

  it.each([
    ["outcomes.bogus == 0", /unknown outcome "bogus"; outcomes are paid, free, session/],
    ["errors.totally_made_up < 1", /unknown error code "totally_made_up"/],
    ["outcomes.bogus.share < 1%", /unknown outcome "bogus"/],
    ["e2e.bogus.p99 < 5", /unknown outcome "bogus"/],
    ["errors.rate.p99 < 1", /errors\.rate, errors\.count or errors\.<code>/],
  ])("refuses the misspelt name %j, listing the valid names", (expr, why) => {
    expect(() => parseThreshold(expr)).toThrow(why);
    expect(() => parseThreshold(expr)).toThrow(
      /Valid names: <phase>\.<stat>.*outcomes\.<outcome>.*errors\.<code>/,
    );
  });

  it.each([
    "outcomes.free == 0",
    "outcomes.error.share < 1%",
    "errors.invalid_exact_evm_signature == 0",
    "errors.budget_run == 0",
    "errors.http_503 == 0",
    "errors.ECONNRESET == 0",
    "errors.UND_ERR_HEADERS_TIMEOUT == 0",
    "e2e.session.p99 < 5ms",
  ])("accepts %j", (expr) => {
    expect(parseThreshold(expr).expr).toBe(expr);
  });
});
