/**
 * `npm run bench:compare [-- --baseline=path] [-- --latest=path] [-- --partial] [-- --write-baseline]`: checks the last
 * `npm run bench` (bench/results/latest.json) against the committed bench/baseline.json and exits 1 when a
 * figure regressed beyond its tolerance.
 *
 * - A figure measured against the official implementation is judged by its ratio (ours / official, both
 *   measured in the same run on the same machine), so machine speed and noise largely cancel.
 * - Any other figure is judged absolutely, with a wider tolerance; "s", "ms" and "last/first" (a soak's
 *   drift) figures are better lower,
 *   everything else (ops/s, verify/s, paid/s, …) better higher.
 * A tolerance of 0.5 lets a figure lose half its value (or, for a time, double) before the check fails.
 * `--write-baseline` copies latest.json over the baseline, keeping the baseline's tolerances.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Figure, LATEST_RESULTS, type Report } from "./lib/report.ts";

type Tolerances = { ratio: number; absolute: number };

export type Baseline = Report & {
  /** Defaults for every figure. */
  tolerance: Tolerances;
  /** Per-figure overrides, by figure name. */
  tolerances?: Record<string, Partial<Tolerances>>;
};

export type Verdict = {
  name: string;
  basis: "ratio" | "absolute" | "missing";
  baseline?: number;
  latest?: number;
  /** The worst value that still passes. */
  limit?: number;
  unit: string;
  ok: boolean;
};

const DEFAULT_TOLERANCE: Tolerances = { ratio: 0.5, absolute: 0.6 };

const lowerIsBetter = (unit: string) => unit === "s" || unit === "ms" || unit === "last/first";

/** Every baseline figure checked against the latest run. */
export function compare(baseline: Baseline, latest: Report): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const [name, base] of Object.entries(baseline.results)) {
    const now: Figure | undefined = latest.results[name];
    const tolerance = { ...DEFAULT_TOLERANCE, ...baseline.tolerance, ...baseline.tolerances?.[name] };
    if (!now) {
      verdicts.push({ name, basis: "missing", baseline: base.ours, unit: base.unit, ok: false });
      continue;
    }
    if (base.ratio !== undefined && now.ratio !== undefined) {
      const limit = base.ratio * (1 - tolerance.ratio);
      verdicts.push({
        name,
        basis: "ratio",
        baseline: base.ratio,
        latest: now.ratio,
        limit,
        unit: "×",
        ok: now.ratio >= limit,
      });
      continue;
    }
    const limit = lowerIsBetter(base.unit)
      ? base.ours / (1 - tolerance.absolute)
      : base.ours * (1 - tolerance.absolute);
    const ok = lowerIsBetter(base.unit) ? now.ours <= limit : now.ours >= limit;
    verdicts.push({
      name,
      basis: "absolute",
      baseline: base.ours,
      latest: now.ours,
      limit,
      unit: base.unit,
      ok,
    });
  }
  return verdicts;
}

function format(verdicts: readonly Verdict[]): string {
  const n = (value: number | undefined) =>
    value === undefined ? "" : value.toLocaleString("en-US", { maximumFractionDigits: value < 10 ? 3 : 1 });
  const rows = verdicts.map((v) => [
    v.ok ? "ok" : "FAIL",
    v.name,
    v.basis,
    `${n(v.baseline)} ${v.unit}`,
    v.latest === undefined ? "not measured" : `${n(v.latest)} ${v.unit}`,
    v.baseline && v.latest !== undefined
      ? `${(((v.latest - v.baseline) / v.baseline) * 100).toFixed(0)}%`
      : "",
    v.limit === undefined ? "" : `${lowerIsBetter(v.unit) ? "≤" : "≥"} ${n(v.limit)}`,
  ]);
  const header = ["", "figure", "judged by", "baseline", "latest", "change", "passes if"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function main(): number {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const baselinePath = arg("baseline") ?? fileURLToPath(new URL("./baseline.json", import.meta.url));
  const latestPath = arg("latest") ?? LATEST_RESULTS;
  if (!existsSync(latestPath)) {
    process.stderr.write(`no results at ${latestPath}: run \`npm run bench -- --quick\` first\n`);
    return 2;
  }
  const latest = JSON.parse(readFileSync(latestPath, "utf8")) as Report;
  const baseline = existsSync(baselinePath)
    ? (JSON.parse(readFileSync(baselinePath, "utf8")) as Baseline)
    : undefined;

  if (process.argv.includes("--write-baseline")) {
    const next: Baseline = {
      ...latest,
      tolerance: baseline?.tolerance ?? DEFAULT_TOLERANCE,
      ...(baseline?.tolerances ? { tolerances: baseline.tolerances } : {}),
    };
    writeFileSync(baselinePath, `${JSON.stringify(next, null, 2)}\n`);
    // Formatted as `npm run check` wants it, when Biome is at hand.
    try {
      execFileSync("npx", ["biome", "format", "--write", baselinePath], { stdio: "ignore" });
    } catch {
      process.stderr.write(`could not run Biome; format ${baselinePath} before committing it\n`);
    }
    process.stdout.write(`wrote ${baselinePath} from ${latestPath}\n`);
    return 0;
  }
  if (!baseline) {
    process.stderr.write(`no baseline at ${baselinePath}\n`);
    return 2;
  }
  if (baseline.quick !== latest.quick) {
    process.stderr.write(
      `warning: the baseline is a ${baseline.quick ? "--quick" : "full"} run, the latest a ${latest.quick ? "--quick" : "full"} one\n`,
    );
  }
  // `--partial`: a run of some benchmarks only (`npm run bench -- --only=…`); the rest are not judged.
  const partial = process.argv.includes("--partial");
  const verdicts = compare(baseline, latest).filter((v) => !(partial && v.basis === "missing"));
  process.stdout.write(`${format(verdicts)}\n`);
  const regressed = verdicts.filter((v) => !v.ok && v.basis !== "missing").map((v) => v.name);
  const missing = verdicts.filter((v) => v.basis === "missing").map((v) => v.name);
  const load = latest.machine.loadavg?.join(" ");
  const lines = [
    regressed.length
      ? `${regressed.length} figure(s) regressed beyond tolerance: ${regressed.join(", ")}`
      : "",
    missing.length
      ? `${missing.length} figure(s) not measured (run all, or pass --partial): ${missing.join(", ")}`
      : "",
  ].filter(Boolean);
  process.stdout.write(
    lines.length === 0
      ? `\nno regression (${verdicts.length} figures; load average at start ${load})\n`
      : `\n${lines.join("\n")}\n(load average at start ${load})\n`,
  );
  return lines.length === 0 ? 0 : 1;
}

process.exit(main());
