/**
 * `soak/drift`: the `soak` scenario (a fixed arrival rate on the flashblocks profile), and how much worse
 * its last window was than its first. A full run holds 10 minutes; `--quick` (CI) holds 90 s, in 15 s
 * windows. The figure is the worse of the e2e p50 and p99 ratios, last window over first: 1 is flat, and
 * below 1 the run got faster as it went (the first window carries the warm-up). A broken money invariant
 * fails the benchmark; failed thresholds are noted beside the figure.
 */
import { loadScenario, runScenario } from "../src/scenario/index.ts";
import { signedPercent } from "../src/scenario/summary.ts";
import { isMain, log, type Results, round, table } from "./lib/report.ts";

const FULL_MS = 600_000;
const QUICK_MS = 90_000;

export async function benchSoak({ quick }: { quick: boolean }): Promise<Results> {
  const scenario = await loadScenario("soak");
  const report = await runScenario(scenario, { durationMs: quick ? QUICK_MS : FULL_MS, progress: false });
  const { drift, memory, windowSeconds } = report.steadyState;
  // Money that went wrong, or a report that did not come, fails the benchmark; the thresholds are the
  // figure's to show, and bench:compare judges the figure against the baseline.
  const broken = [
    ...report.invariants.filter((i) => !i.ok).map((i) => i.name),
    ...(report.error ? [`${report.error.step}: ${report.error.message}`] : []),
  ];
  if (broken.length > 0 || drift.e2e.p50 === null || drift.e2e.p99 === null) {
    throw new Error(`the soak did not hold: ${broken.join("; ") || "too short to measure drift"}`);
  }
  const failed = report.thresholds.filter((t) => !t.ok).map((t) => `${t.expr} (actual ${t.actual})`);
  const rate = scenario.load?.kind === "open" ? scenario.load.stages[0]?.rate : undefined;
  const anvil = memory.anvil
    ? `anvil ${memory.anvil.startMb} → ${memory.anvil.endMb} MB (${memory.anvil.growthPerHourMb} MB/h)`
    : "anvil not measured";
  log(
    `soak: ${report.outcomes.paid} paid in ${round(report.durationMs / 1000)} s, drift p50 ${drift.e2e.p50}, p99 ${drift.e2e.p99}, throughput ${drift.throughput}`,
  );
  return {
    "soak/drift": {
      ours: round(1 + Math.max(drift.e2e.p50, drift.e2e.p99)),
      unit: "last/first",
      p50: report.latency.e2e?.p50,
      p99: report.latency.e2e?.p99,
      notes: `soak scenario, ${rate}/s for ${round(report.durationMs / 1000)} s in ${windowSeconds} s windows: e2e p50 ${signedPercent(drift.e2e.p50)}, p99 ${signedPercent(drift.e2e.p99)}, throughput ${signedPercent(drift.throughput === null ? null : -drift.throughput)}; ${report.outcomes.paid} settlements, invariants held; ${failed.length === 0 ? "thresholds held" : `failed ${failed.join(", ")}`}; memory: harness ${memory.harness.startMb} → ${memory.harness.endMb} MB (${memory.harness.growthPerHourMb} MB/h), ${anvil}`,
    },
  };
}

if (isMain(import.meta.url)) {
  const results = await benchSoak({ quick: process.argv.includes("--quick") });
  console.log(table(results));
}
