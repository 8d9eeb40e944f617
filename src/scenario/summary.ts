import { formatComparison } from "./baseline.ts";
import { formatCost } from "./cost.ts";
import type { RunReport } from "./report.ts";
import { describeMemory, type SteadyState } from "./steady-state.ts";

const pad = (value: string, width: number) => value.padEnd(width);
const mark = (ok: boolean) => (ok ? "✓" : "✗");

/** The end-of-run summary for a terminal: latency per phase, outcomes, errors, thresholds, invariants. */
export function formatSummary(report: RunReport): string {
  const lines: string[] = [];
  const verdict = report.ok ? "PASS" : report.interrupted ? "INTERRUPTED" : report.error ? "ERROR" : "FAIL";
  lines.push(
    `${report.scenario}: ${verdict}  (${report.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s, ${report.throughput.requests}/s, ${report.throughput.paid} paid/s; blocks ${report.chain.startBlock}→${report.chain.endBlock}, ${report.chain.settlements} settlements in ${report.chain.settlementTransactions} transactions)`,
    "",
  );
  // A run on the user's own parts says which, so a CI log cannot be mistaken for a run on our stack.
  const devnet = report.config.devnet as { mode?: string; rpcUrl?: string } | undefined;
  if (devnet?.mode === "attached") {
    lines.push(
      `  against server ${String(report.config.serverUrl)}, facilitator ${String(report.config.facilitatorUrl ?? "(the server's own)")}, chain ${String(devnet.rpcUrl)}`,
      "",
    );
  }
  lines.push(
    `  ${pad("phase", 10)}${["p50", "p90", "p99", "p99.9", "max", "mean"].map((h) => h.padStart(9)).join("")}   (ms)`,
  );
  for (const [phase, s] of Object.entries(report.latency)) {
    lines.push(
      `  ${pad(phase, 10)}${[s.p50, s.p90, s.p99, s.p999, s.max, s.mean].map((v) => v.toFixed(2).padStart(9)).join("")}`,
    );
  }
  lines.push(
    "",
    `  outcomes  ${
      Object.entries(report.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ") || "none"
    }`,
  );
  lines.push(...kindLines(report));
  const errors = Object.entries(report.errors);
  if (errors.length > 0) lines.push(`  errors    ${errors.map(([k, v]) => `${k} ${v}`).join(", ")}`);
  for (const warning of report.warnings) lines.push(`  warning   ${warning}`);
  if (report.interrupted) {
    lines.push(
      "  interrupted: the load was stopped early; the checks below cover what ran, and the run does not pass",
    );
  }
  if (report.error) {
    lines.push(
      // viem's messages run over many lines (URL, body, version): the first says what went wrong.
      `  error     the step "${report.error.step}" failed: ${report.error.message.split("\n")[0]} (the whole message is in the JSON report); what it would have checked is missing below`,
    );
  }
  lines.push(...steadyStateLines(report.steadyState));
  if (report.cost && report.chain.settlements > 0) {
    lines.push(
      "",
      ...formatCost(report.cost)
        .trimEnd()
        .split("\n")
        .map((line) => `  ${line}`),
    );
  }
  if (report.thresholds.length > 0) {
    lines.push("", "  thresholds");
    for (const t of report.thresholds)
      lines.push(`    ${mark(t.ok)} ${t.expr}  (actual ${t.actual ?? "none"})`);
  }
  lines.push("", "  invariants");
  for (const i of report.invariants) lines.push(`    ${mark(i.ok)} ${i.name}: ${i.detail}`);
  if (report.cases && report.cases.length > 0) {
    lines.push("", "  cases");
    for (const c of report.cases)
      lines.push(`    ${mark(c.ok)} ${c.name}: expected ${c.expected}, observed ${c.observed}`);
  }
  if ("comparison" in report && report.comparison) lines.push(...formatComparison(report.comparison));
  return `${lines.join("\n")}\n`;
}

/**
 * e2e latency per kind of request where a run mixes them: SIWX sessions, and paid requests by payment path
 * (a voucher against a settled payment). Nothing for a run of one kind: the phase table says it all.
 */
function kindLines(report: RunReport): string[] {
  const rows = [
    ...(report.latencyByOutcome.session ? [["session", report.latencyByOutcome.session] as const] : []),
    ...Object.entries(report.latencyByPath ?? {}).map(([path, s]) => [`paid ${path}`, s] as const),
  ];
  if (rows.length < 2) return [];
  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  return [
    "",
    `  ${pad("e2e by kind", width)}${["count", "p50", "p90", "p99", "max"].map((h) => h.padStart(9)).join("")}   (ms)`,
    ...rows.map(
      ([name, s]) =>
        `  ${pad(name, width)}${String(s.count).padStart(9)}${[s.p50, s.p90, s.p99, s.max].map((v) => v.toFixed(2).padStart(9)).join("")}`,
    ),
  ];
}

/** A change as a signed percentage: +12.5%, -3.0%, or "-" when there is none. */
export const signedPercent = (fraction: number | null) =>
  fraction === null ? "-" : `${fraction >= 0 ? "+" : ""}${(fraction * 100).toFixed(1)}%`;

/** Throughput and latency per window, and how the last full window compares with the first. */
function steadyStateLines(steady: SteadyState): string[] {
  const { drift, memory, windows } = steady;
  const lines = [
    "",
    `  steady state (${steady.windowSeconds} s windows): e2e p50 ${signedPercent(drift.e2e.p50)}, p99 ${signedPercent(drift.e2e.p99)}, throughput ${signedPercent(drift.throughput === null ? null : -drift.throughput)} from the first window to the last; memory ${describeMemory(memory)}`,
  ];
  // A terminal reads a dozen rows; the JSON and HTML reports have every window.
  if (windows.length < 2 || windows.length > 12) return lines;
  lines.push(
    `    ${["from s", "req/s", "p50 ms", "p99 ms", "block", "harness MB", "anvil MB"].map((h) => h.padStart(11)).join("")}`,
  );
  for (const w of windows) {
    lines.push(
      `    ${[w.fromSecond, w.throughput, w.p50, w.p99, w.block, w.harnessRssMb, w.anvilRssMb].map((v) => String(v ?? "-").padStart(11)).join("")}`,
    );
  }
  return lines;
}
