import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, platform, release, totalmem } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** Where `npm run bench` writes its results and `npm run bench:compare` reads them. */
export const LATEST_RESULTS = fileURLToPath(new URL("../results/latest.json", import.meta.url));

/** One benchmark figure. `ratio` is ours / official, oriented so that bigger is always better for us. */
export type Figure = {
  ours: number;
  official?: number;
  ratio?: number;
  unit: string;
  p50?: number;
  p99?: number;
  /** What else a reader needs to trust the figure: block height, batch sizes, errors, settings. */
  notes?: string;
};

export type Results = Record<string, Figure>;

export type Machine = {
  cpus: number;
  model: string;
  memoryGiB: number;
  node: string;
  os: string;
  loadavg: number[];
};

export type Report = {
  machine: Machine & { loadavgAfter?: number[] };
  startedAt: string;
  durationSeconds?: number;
  quick: boolean;
  results: Results;
};

export function machine(): Machine {
  return {
    cpus: availableParallelism(),
    model: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${platform()} ${release()}`,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Both sides measured: the ratio, for a figure where more is better (throughput) or less is (latency). */
export function sideBySide(
  ours: number,
  official: number,
  unit: string,
  better: "higher" | "lower" = "higher",
): Figure {
  const ratio = better === "higher" ? ours / official : official / ours;
  return { ours: round(ours), official: round(official), ratio: round(ratio), unit };
}

export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const magnitude = Math.abs(value);
  const digits = magnitude >= 1000 ? 0 : magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 4;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

const fmt = (value: number | undefined) =>
  value === undefined ? "" : Number.isFinite(value) ? value.toLocaleString("en-US") : String(value);

/** The figures as a fixed-width table (also valid Markdown). */
export function table(results: Results): string {
  const header = ["benchmark", "ours", "official", "ratio", "unit", "p50 ms", "p99 ms"];
  const rows = Object.entries(results).map(([name, f]) => [
    name,
    fmt(f.ours),
    fmt(f.official),
    f.ratio === undefined ? "" : `${fmt(f.ratio)}×`,
    f.unit,
    fmt(f.p50),
    fmt(f.p99),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 || i === 4 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

export function writeReport(path: string, report: Report): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** Command-line flags shared by every benchmark: `--quick`, `--only a,b`. */
export function benchArgs(argv = process.argv.slice(2)) {
  const only = argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  return {
    quick: argv.includes("--quick"),
    only: only ? only.split(",") : undefined,
  };
}

/** Progress on stderr, so stdout stays the table. */
export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** True when `metaUrl` is the module node was started with (a benchmark run on its own). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  return new URL(metaUrl).pathname === entry || new URL(metaUrl).pathname === `${entry}.ts`;
}
