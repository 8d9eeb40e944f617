import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { PHASES, type Phase } from "../load/index.ts";
import { comparisonChange, comparisonValue } from "./baseline.ts";
import { type CapacityResult, type CapacityStep, capacityHeadline, stepGas, trialWords } from "./capacity.ts";
import type { RunReport } from "./report.ts";
import { describeMemory } from "./steady-state.ts";
import { metricValue } from "./thresholds.ts";

const PHASE_LABELS: Record<Phase, string> = {
  challenge: "request → 402",
  sign: "sign",
  paid: "paid request",
  verify: "verify (facilitator)",
  settle: "settle (facilitator)",
  e2e: "end to end",
};

const escapeHtml = (text: string) =>
  text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");

/** A scenario's config may price a route in atomic units as a bigint, which JSON has no number for. */
const bigintAsString = (_key: string, value: unknown) =>
  typeof value === "bigint" ? value.toString() : value;

/**
 * JSON for a `<script>` element. Inside one, HTML ends the element at `</script` and changes parsing at `<!--`,
 * whatever JavaScript or JSON thinks of quoting; both start with `<`, and `\u003c` means the same to JSON.parse.
 */
const scriptJson = (value: unknown) => JSON.stringify(value, bigintAsString).replaceAll("<", "\\u003c");

/** A library inlined into `<script>`/`<style>`: refuse, rather than silently cut the page, if it could close the element. */
function inlineAsset(specifier: string, element: "script" | "style"): string {
  const text = readFileSync(createRequire(import.meta.url).resolve(specifier), "utf8");
  if (text.toLowerCase().includes(`</${element}`))
    throw new Error(`${specifier} contains </${element} and cannot be inlined`);
  return text;
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const formatCount = (n: number | bigint) => integer.format(n);

/** Threshold actuals mix units (ms, fractions, rates, counts): four significant digits reads well for all. */
const formatNumber = (n: number) =>
  Number.isInteger(n)
    ? formatCount(n)
    : new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 }).format(n);

function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms.toFixed(ms >= 100 ? 0 : ms >= 10 ? 1 : ms >= 1 ? 2 : 3)} ms`;
}

const formatRate = (perSecond: number) => `${perSecond.toFixed(perSecond >= 100 ? 0 : 1)}/s`;

function formatPercent(fraction: number): string {
  const percent = fraction * 100;
  if (percent === 0) return "0%";
  if (percent < 0.01) return "<0.01%";
  return `${percent.toFixed(percent < 10 ? 2 : 1)}%`;
}

function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
}

function formatStart(iso: string): string {
  const date = new Date(iso);
  // Readers sit in different time zones; UTC reads the same for all of them and matches the JSON report.
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

const mark = (ok: boolean) =>
  ok ? '<span class="mark ok" title="pass">✓</span>' : '<span class="mark bad" title="fail">✗</span>';

type Column = { label: string; numeric?: boolean };
type Row = { cells: string[]; failed?: boolean };

/** Cells are HTML already escaped by the caller, so a cell can hold a mark or a `<code>`. */
function table(id: string, columns: Column[], rows: Row[], empty = ""): string {
  if (rows.length === 0) return `<p class="empty" id="${id}">${escapeHtml(empty)}</p>`;
  const align = (c: Column | undefined) => (c?.numeric ? ' class="num"' : "");
  const head = columns.map((c) => `<th${align(c)}>${escapeHtml(c.label)}</th>`).join("");
  const body = rows
    .map(
      (row) =>
        `<tr${row.failed ? ' class="failed"' : ""}>${row.cells.map((cell, i) => `<td${align(columns[i])}>${cell}</td>`).join("")}</tr>`,
    )
    .join("\n");
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const section = (title: string, body: string, wide = false) =>
  `<section class="panel${wide ? " wide" : ""}"><h2>${escapeHtml(title)}</h2>${body}</section>`;

const card = (label: string, value: string, detail: string) =>
  `<div class="card"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div><div class="detail">${escapeHtml(detail)}</div></div>`;

const byCountDescending = (counts: Record<string, number>) =>
  Object.entries(counts).sort((a, b) => b[1] - a[1]);

function verdictDetail(report: RunReport): string {
  const failedThresholds = report.thresholds.filter((t) => !t.ok).length;
  const failedInvariants = report.invariants.filter((i) => !i.ok).length;
  const failedCases = (report.cases ?? []).filter((c) => !c.ok).length;
  const failures = [
    failedThresholds && `${failedThresholds} of ${report.thresholds.length} thresholds failed`,
    failedInvariants && `${failedInvariants} of ${report.invariants.length} invariants failed`,
    failedCases && `${failedCases} of ${report.cases?.length} cases failed`,
    report.interrupted && "the run was interrupted before its end",
    report.error && `the step "${report.error.step}" failed`,
  ].filter((f): f is string => typeof f === "string");
  if (failures.length > 0) return failures.join(", ");
  return report.ok
    ? `all ${report.thresholds.length} thresholds and ${report.invariants.length} invariants hold`
    : "the run failed";
}

function summaryCards(report: RunReport): string {
  const paid = report.outcomes.paid ?? 0;
  // The same figures the thresholds judge, so the card and a failing `errors.rate` row never disagree.
  const errorCount = metricValue(report, "errors.count") ?? 0;
  const errorRate = metricValue(report, "errors.rate");
  const e2e = report.latency.e2e;
  return [
    card("Requests", formatCount(report.requests), `in ${formatDuration(report.durationMs)}`),
    card(
      "Paid",
      formatCount(paid),
      report.requests > 0 ? `${formatPercent(paid / report.requests)} of requests` : "no requests",
    ),
    card("Throughput", formatRate(report.throughput.requests), `${formatRate(report.throughput.paid)} paid`),
    card("e2e p50", e2e ? formatMs(e2e.p50) : "—", e2e ? `mean ${formatMs(e2e.mean)}` : "no samples"),
    card("e2e p99", e2e ? formatMs(e2e.p99) : "—", e2e ? `max ${formatMs(e2e.max)}` : "no samples"),
    card(
      "Error rate",
      errorRate === null ? "—" : formatPercent(errorRate),
      `${formatCount(errorCount)} errors`,
    ),
  ].join("\n");
}

function checks(report: RunReport): string {
  const thresholds = table(
    "thresholds",
    [{ label: "" }, { label: "threshold" }, { label: "actual", numeric: true }],
    report.thresholds.map((t) => ({
      cells: [
        mark(t.ok),
        `<code>${escapeHtml(t.expr)}</code>`,
        t.actual === null ? "—" : escapeHtml(formatNumber(t.actual)),
      ],
      failed: !t.ok,
    })),
    "No thresholds.",
  );
  const invariants = table(
    "invariants",
    [{ label: "" }, { label: "invariant" }, { label: "detail" }],
    report.invariants.map((i) => ({
      cells: [mark(i.ok), escapeHtml(i.name), escapeHtml(i.detail)],
      failed: !i.ok,
    })),
    "No invariants.",
  );
  const cases = report.cases?.length
    ? section(
        "Cases",
        table(
          "cases",
          [{ label: "" }, { label: "case" }, { label: "expected" }, { label: "observed" }],
          report.cases.map((c) => ({
            cells: [mark(c.ok), escapeHtml(c.name), escapeHtml(c.expected), escapeHtml(c.observed)],
            failed: !c.ok,
          })),
        ),
        true,
      )
    : "";
  return section("Thresholds", thresholds) + section("Invariants", invariants) + cases;
}

function measurements(report: RunReport): string {
  const latency = table(
    "latency",
    [
      { label: "phase" },
      ...["count", "p50", "p90", "p99", "p99.9", "max", "mean"].map((label) => ({ label, numeric: true })),
    ],
    [
      ...PHASES.flatMap((phase) => {
        const s = report.latency[phase];
        return s ? [[PHASE_LABELS[phase], s] as const] : [];
      }),
      // Paid and session requests (or failed ones) take different paths; their e2e is shown apart.
      ...Object.entries(report.latencyByOutcome ?? {}).map(
        ([outcome, s]) => [`end to end, ${outcome}`, s] as const,
      ),
    ].map(([label, s]) => ({
      cells: [
        escapeHtml(label),
        formatCount(s.count),
        ...[s.p50, s.p90, s.p99, s.p999, s.max, s.mean].map((v) => escapeHtml(formatMs(v))),
      ],
    })),
    "No latency samples.",
  );
  const share = (n: number) => (report.requests > 0 ? formatPercent(n / report.requests) : "—");
  const outcomes = table(
    "outcomes",
    [{ label: "outcome" }, { label: "requests", numeric: true }, { label: "share", numeric: true }],
    byCountDescending(report.outcomes).map(([outcome, n]) => ({
      cells: [escapeHtml(outcome), formatCount(n), escapeHtml(share(n))],
    })),
    "No requests.",
  );
  const errors = table(
    "errors",
    [{ label: "code" }, { label: "requests", numeric: true }, { label: "share", numeric: true }],
    byCountDescending(report.errors).map(([code, n]) => ({
      cells: [`<code>${escapeHtml(code)}</code>`, formatCount(n), escapeHtml(share(n))],
      failed: true,
    })),
    "No errors.",
  );
  const { chain } = report;
  // A decimal string because gas can outgrow a double; BigInt keeps it exact.
  const gas = BigInt(chain.gasUsed);
  const chainRows: [string, string][] = [
    ["blocks", `${formatCount(chain.startBlock)} → ${formatCount(chain.endBlock)}`],
    ["settlements", formatCount(chain.settlements)],
    ["settlement transactions", formatCount(chain.settlementTransactions)],
    ["gas used", formatCount(gas)],
  ];
  if (chain.settlements > 0)
    chainRows.push(["gas per settlement", formatCount(gas / BigInt(chain.settlements))]);
  const chainTable = table(
    "chain",
    [{ label: "figure" }, { label: "value", numeric: true }],
    chainRows.map(([k, v]) => ({ cells: [escapeHtml(k), escapeHtml(v)] })),
  );
  return `${section("Latency by phase", latency, true)}
<div class="row">${section("Outcomes", outcomes)}${section("Errors by code", errors)}${section("Chain", chainTable)}</div>`;
}

/**
 * What both pages' charts share. The tables are rendered on the server so a page still reads without
 * JavaScript; only the charts need it. `body.dataset.chartsReady` is set once every chart has drawn, and
 * `window.reportCharts` holds each chart by its element's id, for a test or a reader at the console to read
 * what was plotted.
 */
const CHART_HELPERS = `
  const px = uPlot.pxRatio;
  const height = 280;
  const charts = [];
  window.reportCharts = {};
  let pending = 0;
  const finish = () => {
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.chartsReady = "true";
  };
  const plot = (id, opts, data) => {
    const el = document.getElementById(id);
    if (data[0].length === 0) {
      el.classList.add("no-data");
      el.textContent = "No data for this chart.";
      return;
    }
    pending += 1;
    const ready = () => {
      pending -= 1;
      if (pending === 0) finish();
    };
    const hooks = { ...opts.hooks, ready: [ready] };
    const chart = new uPlot({ width: el.clientWidth, height, ...opts, hooks }, data, el);
    charts.push(chart);
    window.reportCharts[id] = chart;
  };
  const line = (label, stroke, extra) => ({ label, stroke, width: 2, points: { show: false }, ...extra });
  const legendMs = (prefix) => (u, v) => (v == null ? "--" : prefix + Number(v.toPrecision(3)) + " ms");
  // Ticks of a log axis at 1, 2, 5 × 10^n rather than uPlot's powers of the base from wherever the data starts
  // (2.896, 5.793…); every whole multiple of 10^n when that leaves fewer than three in a narrow range.
  const roundTicks = (u, axis, min, max) => {
    const within = (multiples) => {
      const ticks = [];
      for (let decade = 10 ** Math.floor(Math.log10(min)); decade <= max; decade *= 10) {
        for (const m of multiples) {
          const tick = Number((m * decade).toPrecision(1));
          if (tick >= min && tick <= max) ticks.push(tick);
        }
      }
      return ticks;
    };
    const ticks = within([1, 2, 5]);
    return ticks.length >= 3 ? ticks : within([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  };
  // Dashed vertical lines across the plot, labelled near its top, each label a row lower than the one before so
  // close lines do not print over each other: [label, x value, colour].
  const markerLines = (markers) => (u) => {
    const { ctx, bbox } = u;
    ctx.save();
    ctx.lineWidth = px;
    ctx.setLineDash([4 * px, 4 * px]);
    ctx.font = 12 * px + "px system-ui, sans-serif";
    for (const [row, [label, value, color]] of markers.entries()) {
      const x = Math.round(u.valToPos(value, "x", true));
      if (x < bbox.left || x > bbox.left + bbox.width) continue;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      // Labels near the right edge go on the line's left, so they are not cut off.
      const width = ctx.measureText(label).width;
      const left = x + 4 * px + width > bbox.left + bbox.width ? x - 4 * px - width : x + 4 * px;
      ctx.fillText(label, left, bbox.top + (14 + 16 * row) * px);
    }
    ctx.restore();
  };
`;

const CHART_FINISH = `
  if (pending === 0) finish();
  addEventListener("resize", () => {
    for (const chart of charts) chart.setSize({ width: chart.root.parentElement.clientWidth, height });
  });
`;

/** The run report's three charts, drawn from the embedded report. */
const RUN_SCRIPT = `
(() => {
${CHART_HELPERS}
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const timeline = report.throughput.timeline;
  const seconds = timeline.map((t) => t.second);
  const secondAxis = { label: "seconds since start" };

  // A second with no finished request has no latency: a gap, not a dip to zero.
  const latencyOrGap = (v) => (v > 0 ? v : null);
  plot(
    "chart-latency",
    {
      scales: { x: { time: false } },
      axes: [secondAxis, { label: "ms", size: 60 }],
      series: [
        { label: "second" },
        line("p50", "#2563eb", { fill: "rgba(37, 99, 235, 0.08)", value: legendMs("") }),
        line("p99", "#ea580c", { value: legendMs("") }),
      ],
    },
    [seconds, timeline.map((t) => latencyOrGap(t.p50)), timeline.map((t) => latencyOrGap(t.p99))],
  );

  // The timeline counts whole seconds since the start, and a run rarely ends on one: counted as a whole second,
  // its last, partial one would plunge. A second is plotted as a rate over the part of it the run covered, and
  // left out when that is under half a second, where a few requests finishing in the last milliseconds would
  // extrapolate to a spike. A report without a duration is taken as whole seconds.
  const runSeconds = report.durationMs > 0 ? report.durationMs / 1000 : Infinity;
  const covered = (t) => Math.min(1, runSeconds - t.second);
  const rated = timeline.filter((t) => covered(t) >= 0.5);
  const perSecond = (key) => rated.map((t) => t[key] / covered(t));
  plot(
    "chart-throughput",
    {
      scales: { x: { time: false } },
      axes: [secondAxis, { label: "per second", size: 60 }],
      series: [
        { label: "second" },
        line("requests/s", "#2563eb", { fill: "rgba(37, 99, 235, 0.08)" }),
        line("paid/s", "#16a34a"),
        line("errors/s", "#dc2626"),
      ],
    },
    [rated.map((t) => t.second), perSecond("requests"), perSecond("paid"), perSecond("errors")],
  );

  // Buckets are log-spaced, so a log x axis gives every bucket the same width; each bar ends at its upper
  // bound and starts where the one before ended.
  const buckets = report.distribution;
  const bounds = buckets.map((b) => b.le);
  const ratio = bounds.length > 1 ? bounds[1] / bounds[0] : 2 ** 0.25;
  const e2e = report.latency.e2e;
  plot(
    "chart-distribution",
    {
      scales: {
        x: { time: false, distr: 3, log: 2, range: () => [bounds[0] / ratio, bounds[bounds.length - 1]] },
        y: { range: (u, min, max) => [0, max * 1.1] },
      },
      axes: [{ label: "end-to-end latency (ms, log scale)", splits: roundTicks }, { label: "requests", size: 60 }],
      series: [
        { label: "latency", value: legendMs("≤ ") },
        {
          label: "requests",
          stroke: "#4f46e5",
          fill: "rgba(79, 70, 229, 0.55)",
          width: 1,
          paths: uPlot.paths.bars({ size: [0.92, Infinity], align: -1 }),
          points: { show: false },
        },
      ],
      hooks: { draw: [markerLines(e2e ? [["p50", e2e.p50, "#2563eb"], ["p99", e2e.p99, "#ea580c"]] : [])] },
    },
    [bounds, buckets.map((b) => b.count)],
  );
${CHART_FINISH}
})();
`;

/** The capacity page's two curves, drawn from the embedded search: one point per step, by offered rate. */
const CAPACITY_SCRIPT = `
(() => {
${CHART_HELPERS}
  const result = JSON.parse(document.getElementById("capacity-data").textContent);
  // Bisection runs rates between earlier ones; a curve is drawn by rising rate.
  const steps = [...result.steps].sort((a, b) => a.rate - b.rate);
  const rates = steps.map((s) => s.rate);
  // Rates grow by a factor per step, so a log axis spaces the steps evenly; its ticks are the rates tried,
  // thinned when they would crowd.
  const rateScale = {
    time: false,
    distr: 3,
    log: 10,
    range: () => [Math.min(...rates) / 1.2, Math.max(...rates) * 1.2],
  };
  const rateAxis = {
    label: "offered rate (per second, log scale)",
    splits: (u) => {
      const every = Math.max(1, Math.ceil((rates.length * 56 * px) / u.bbox.width));
      return rates.filter((_, i) => i % every === 0);
    },
    // uPlot's own filter for a log axis labels only round mantissas, which the rates tried seldom are.
    filter: (u, splits) => splits,
  };
  const logScale = {
    distr: 3,
    log: 10,
    range: (u, min, max) => (min == null ? [1, 10] : [min / 1.3, max * 1.3]),
  };
  const failed = steps.filter((s) => !s.ok);
  const markers = [
    ...(result.highestRate === null ? [] : [["held " + result.highestRate + "/s", result.highestRate, "#15803d"]]),
    ...failed.map((s) => ["failed " + s.rate + "/s", s.rate, "#b91c1c"]),
  ];
  const dots = { show: true, size: 7 };
  const perSecondValue = (u, v) => (v == null ? "--" : Number(v.toPrecision(4)) + "/s");
  // A log axis has no zero: a step that finished nothing, or measured no latency, is a gap.
  const positiveOrGap = (v) => (v != null && v > 0 ? v : null);

  plot(
    "chart-capacity-latency",
    {
      scales: { x: rateScale, y: logScale },
      axes: [rateAxis, { label: "end-to-end ms (log scale)", size: 60, splits: roundTicks }],
      series: [
        { label: "offered", value: perSecondValue },
        line("p50", "#2563eb", { points: dots, value: legendMs("") }),
        line("p99", "#ea580c", { points: dots, value: legendMs("") }),
      ],
      hooks: { draw: [markerLines(markers)] },
    },
    [rates, steps.map((s) => positiveOrGap(s.p50)), steps.map((s) => positiveOrGap(s.p99))],
  );

  plot(
    "chart-capacity-throughput",
    {
      scales: { x: rateScale, y: logScale },
      axes: [rateAxis, { label: "per second (log scale)", size: 60, splits: roundTicks }],
      series: [
        { label: "offered", value: perSecondValue },
        line("achieved", "#2563eb", { points: dots, value: perSecondValue }),
        line("paid", "#16a34a", { points: dots, value: perSecondValue }),
        // Where achieved would be if the stack kept up: the gap to it is the load it did not serve.
        line("as offered", "#94a3b8", { dash: [6, 6], value: perSecondValue }),
      ],
      hooks: { draw: [markerLines(markers)] },
    },
    [rates, steps.map((s) => positiveOrGap(s.achieved)), steps.map((s) => positiveOrGap(s.paid)), rates],
  );
${CHART_FINISH}
})();
`;

const STYLE = `
:root { color-scheme: light; --pass: #15803d; --fail: #b91c1c; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0; background: #f1f5f9; color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 24px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr)); }
main > .wide, main > header, main > .cards, main > .row { grid-column: 1 / -1; }
.row { display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(min(340px, 100%), 1fr)); align-items: start; }
header { display: flex; flex-wrap: wrap; gap: 24px; align-items: center; justify-content: space-between; background: #fff; border-radius: 12px; padding: 20px 24px; border-left: 10px solid var(--verdict); box-shadow: 0 1px 3px rgb(15 23 42 / 0.08); }
body.pass { --verdict: var(--pass); } body.fail { --verdict: var(--fail); }
.eyebrow { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.08em; }
h1 { margin: 2px 0 4px; font-size: 26px; overflow-wrap: anywhere; }
.description { margin: 0 0 10px; color: #334155; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 0; font-size: 13px; }
dl.meta div { display: flex; gap: 6px; } dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
header > :first-child { flex: 1 1 320px; min-width: 0; }
.verdict { text-align: center; min-width: 200px; }
#verdict { display: inline-block; font-size: 44px; font-weight: 800; letter-spacing: 0.06em; color: #fff; background: var(--verdict); border-radius: 10px; padding: 4px 28px; }
.verdict .why { margin-top: 6px; color: var(--verdict); font-weight: 600; font-size: 13px; }
.cards { display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(min(170px, 100%), 1fr)); }
.card, .panel { background: #fff; border-radius: 12px; box-shadow: 0 1px 3px rgb(15 23 42 / 0.08); }
.card { padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.06em; }
.card .value { font-size: 28px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 13px; }
.panel { padding: 16px 20px; min-width: 0; }
h2 { margin: 0 0 10px; font-size: 15px; }
.chart { min-height: 280px; }
.chart.no-data { min-height: 80px; display: grid; place-items: center; color: var(--muted); }
.uplot { width: 100%; } .u-legend { font-size: 13px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; color: var(--muted); font-weight: 600; font-size: 12px; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid var(--line); padding: 6px 8px; vertical-align: top; overflow-wrap: anywhere; }
tr:last-child td { border-bottom: 0; }
.num { text-align: right; white-space: nowrap; }
tr.failed td { background: #fef2f2; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.mark { font-weight: 800; font-size: 16px; } .mark.ok { color: var(--pass); } .mark.bad { color: var(--fail); }
.empty { color: var(--muted); margin: 0; }
.note { color: var(--muted); margin: 10px 0 0; font-size: 13px; }
#stopped { color: var(--muted); font-weight: 400; }
.held { color: var(--pass); font-weight: 600; } .failed-why { color: var(--fail); font-weight: 600; }
pre { margin: 0; max-height: 480px; overflow: auto; background: #f8fafc; border: 1px solid var(--line); border-radius: 8px; padding: 12px; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
`;

/**
 * The page needs nothing from outside itself; the policy makes the browser hold it to that, whatever a value in
 * the report contains and wherever the file is opened.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'";

type Page = {
  title: string;
  ok: boolean;
  /** The page's sections, HTML already escaped. */
  main: string;
  /** The data the charts are drawn from, embedded as JSON under this id. */
  data: { id: string; value: unknown };
  script: string;
};

function page({ title, ok, main, data, script }: Page): string {
  const uplotScript = inlineAsset("uplot/dist/uPlot.iife.min.js", "script");
  const uplotStyle = inlineAsset("uplot/dist/uPlot.min.css", "style");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<title>${escapeHtml(title)}</title>
<style>${uplotStyle}</style>
<style>${STYLE}</style>
</head>
<body class="${ok ? "pass" : "fail"}">
<main>
${main}
</main>
<script type="application/json" id="${data.id}">${scriptJson(data.value)}</script>
<script>${uplotScript}</script>
<script>${script}</script>
</body>
</html>
`;
}

const chart = (id: string, title: string, wide = false) =>
  section(title, `<div class="chart" id="${id}"></div>`, wide);

function header(
  eyebrow: string,
  name: string,
  description: string,
  meta: [string, string][],
  verdict: string,
) {
  return `<header>
  <div>
    <div class="eyebrow">${escapeHtml(eyebrow)}</div>
    <h1 id="scenario">${escapeHtml(name)}</h1>
    <p class="description">${escapeHtml(description)}</p>
    <dl class="meta">${meta.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join("")}</dl>
  </div>
  ${verdict}
</header>`;
}

const driftText = (fraction: number | null) =>
  fraction === null ? "—" : `${fraction >= 0 ? "+" : ""}${(fraction * 100).toFixed(1)}%`;

/** Each window's throughput, latency, block height and memory, and the drift from the first to the last. */
function steadyStateSection(report: RunReport): string {
  const { drift, memory, windows, windowSeconds } = report.steadyState;
  const summary = `<p id="drift">From the first ${windowSeconds} s window to the last full one: e2e p50 ${escapeHtml(driftText(drift.e2e.p50))}, p99 ${escapeHtml(driftText(drift.e2e.p99))}, throughput ${escapeHtml(driftText(drift.throughput === null ? null : -drift.throughput))}. Memory: ${escapeHtml(describeMemory(memory))}.</p>`;
  const rows = table(
    "steady-state",
    [
      { label: "from (s)", numeric: true },
      { label: "requests/s", numeric: true },
      { label: "p50 (ms)", numeric: true },
      { label: "p99 (ms)", numeric: true },
      { label: "errors", numeric: true },
      { label: "block", numeric: true },
      { label: "harness MB", numeric: true },
      { label: "anvil MB", numeric: true },
    ],
    windows.map((w) => ({
      cells: [w.fromSecond, w.throughput, w.p50, w.p99, w.errors, w.block, w.harnessRssMb, w.anvilRssMb].map(
        (v) => (v === null ? "—" : escapeHtml(formatNumber(v))),
      ),
    })),
    "No window: the run measured nothing.",
  );
  return section("Steady state", summary + rows, true);
}

/** The word on the badge, the same as the terminal summary's. */
const runVerdict = (report: RunReport) =>
  report.ok ? "PASS" : report.interrupted ? "INTERRUPTED" : report.error ? "ERROR" : "FAIL";

/** What a reader must not miss even when the tables look fine: warnings, an interruption, a failed step. */
function notices(report: RunReport): string {
  const items = [
    ...(report.interrupted
      ? ["Interrupted: the load was stopped early; the checks cover what ran, and the run does not pass."]
      : []),
    ...(report.error ? [`The step "${report.error.step}" failed: ${report.error.message}`] : []),
    ...(report.warnings ?? []).map((w) => `Warning: ${w}`),
  ];
  if (items.length === 0) return "";
  return section(
    "Notices",
    `<ul id="notices">${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>`,
    true,
  );
}

/** This run against `--baseline`: each figure's baseline, now, change and verdict, and what it was held to. */
function comparisonSection(report: RunReport): string {
  const { comparison } = report;
  if (!comparison) return "";
  const words = { ok: "ok", regressed: "regressed", improved: "improved", info: "—" } as const;
  const intro = `<p id="comparison-verdict">Against ${escapeHtml(comparison.baseline.file ?? comparison.baseline.runId)} (run ${escapeHtml(comparison.baseline.runId)}, ${escapeHtml(formatStart(comparison.baseline.startedAt))}): ${comparison.regressed ? "<strong>regressed</strong>" : "no regression"}.</p>`;
  const rows = table(
    "comparison",
    [
      { label: "metric" },
      { label: "baseline", numeric: true },
      { label: "now", numeric: true },
      { label: "change", numeric: true },
      { label: "verdict" },
      { label: "held to" },
    ],
    comparison.rows.map((row) => ({
      failed: row.verdict === "regressed",
      cells: [
        escapeHtml(row.unit === "%" ? row.metric : `${row.metric} (${row.unit})`),
        escapeHtml(comparisonValue(row.baseline, row.unit)),
        escapeHtml(comparisonValue(row.now, row.unit)),
        escapeHtml(comparisonChange(row)),
        row.verdict === "regressed" || row.verdict === "ok"
          ? `${mark(row.verdict === "ok")} ${words[row.verdict]}`
          : escapeHtml(words[row.verdict]),
        escapeHtml(row.detail),
      ],
    })),
  );
  const notes = comparison.notes.length
    ? `<ul id="comparison-notes">${comparison.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`
    : "";
  return section("Comparison with the baseline", intro + rows + notes, true);
}

/** The run as one self-contained HTML page: verdict, summary, charts (uPlot, inlined) and tables. No network access. */
export function renderHtmlReport(report: RunReport): string {
  const verdict = runVerdict(report);
  const blocks = report.chain.endBlock - report.chain.startBlock;
  const meta: [string, string][] = [
    ["run", report.runId],
    ["started", formatStart(report.startedAt)],
    ["duration", formatDuration(report.durationMs)],
    ["seed", String(report.seed)],
    ["blocks", `${report.chain.startBlock} → ${report.chain.endBlock} (${blocks} blocks)`],
  ];
  return page({
    title: `${verdict} · ${report.scenario} · x402-devnet`,
    ok: report.ok,
    main: `${header(
      "x402-devnet scenario report",
      report.scenario,
      report.description,
      meta,
      `<div class="verdict"><div id="verdict">${verdict}</div><div class="why">${escapeHtml(verdictDetail(report))}</div></div>`,
    )}
<div class="cards">
${summaryCards(report)}
</div>
${notices(report)}
${checks(report)}
${comparisonSection(report)}
${chart("chart-latency", "End-to-end latency per second")}
${chart("chart-throughput", "Throughput per second")}
${chart("chart-distribution", "End-to-end latency distribution", true)}
${measurements(report)}
${steadyStateSection(report)}
${section("Configuration", `<pre id="config">${escapeHtml(JSON.stringify(report.config, bigintAsString, 2))}</pre>`, true)}`,
    data: { id: "report-data", value: report },
    script: RUN_SCRIPT,
  });
}

const formatOffered = (rate: number) => `${formatNumber(rate)}/s`;

/** Why a step failed, each failure with what makes it readable: a threshold's actual, an invariant's detail. */
function stepVerdict(step: CapacityStep): string {
  if (step.ok) return '<span class="held">held</span>';
  const reasons = step.failed.map((name) => {
    const threshold = step.thresholds.find((t) => !t.ok && t.expr === name);
    if (threshold) {
      const actual = threshold.actual === null ? "not measured" : `actual ${formatNumber(threshold.actual)}`;
      return `<code>${escapeHtml(name)}</code> (${escapeHtml(actual)})`;
    }
    const invariant = step.brokenInvariants.find((i) => i.name === name);
    return escapeHtml(invariant ? `${name}: ${invariant.detail}` : name);
  });
  return `<span class="failed-why">failed:</span> ${reasons.join("; ")}`;
}

const isRamp = (step: CapacityStep) => (step.phase ?? "ramp") === "ramp";

function stopSentence(result: CapacityResult): string {
  const last = result.steps.filter(isRamp).at(-1);
  if (!last) return "the search ran no step";
  const bisected = result.steps.filter((s) => !isRamp(s)).length;
  switch (result.stoppedBy) {
    case "failure":
      return `stopped at ${formatOffered(last.rate)}, the first rate that failed${
        bisected > 0 ? `; ${bisected} bisection step${bisected === 1 ? "" : "s"} found the knee below it` : ""
      }`;
    case "interrupted":
      return `interrupted during the step at ${formatOffered(last.rate)}`;
    case "max-steps":
      return `every step held, up to the limit of ${result.settings.maxSteps}: capacity is at least ${formatOffered(last.rate)}`;
  }
}

function capacityCards(result: CapacityResult): string {
  const held = result.steps.find((s) => s.ok && s.rate === result.highestRate);
  // The lowest rate that failed above the knee: where the bisection closed in, or the ramp's failure.
  const failed = result.steps
    .filter((s) => !s.ok && (result.highestRate === null || s.rate > result.highestRate))
    .sort((a, b) => a.rate - b.rate)[0];
  const { settings } = result;
  const bisected = result.steps.filter((s) => !isRamp(s)).length;
  return [
    card(
      "Highest rate held",
      held ? formatOffered(held.rate) : "—",
      held ? `achieved ${formatRate(held.achieved)}` : "no rate held",
    ),
    card(
      "p99 at that rate",
      held?.p99 != null ? formatMs(held.p99) : "—",
      held ? (held.p50 === null ? "no samples" : `p50 ${formatMs(held.p50)}`) : "no rate held",
    ),
    card(
      "Failed at",
      failed ? formatOffered(failed.rate) : "—",
      failed
        ? `${failed.failed[0] ?? "failed"}${failed.failed.length > 1 ? ` and ${failed.failed.length - 1} more` : ""}`
        : "no step failed",
    ),
    card(
      "Steps",
      formatCount(result.steps.length),
      settings.bisectSteps === undefined
        ? `of at most ${settings.maxSteps}, ${formatDuration(settings.stepDurationMs)} each`
        : `${result.steps.length - bisected} ramp (at most ${settings.maxSteps}) and ${bisected} bisection (at most ${settings.bisectSteps}), ${formatDuration(settings.stepDurationMs)} each`,
    ),
  ].join("\n");
}

function stepsTable(result: CapacityResult): string {
  const judged = result.steps[0]?.thresholds.map((t) => `<code>${escapeHtml(t.expr)}</code>`) ?? [];
  const criteria = `<p class="note">Each step held when ${
    judged.length > 0 ? `${judged.join(", ")} and ` : ""
  }the money invariants held. The ramp stops at the first step that fails; bisection then runs rates between
the last that held and the first that failed. Cores are CPU seconds per second over the whole step.</p>`;
  const optionalMs = (ms: number | null) => (ms === null ? "—" : escapeHtml(formatMs(ms)));
  const cpu = (step: CapacityStep) =>
    step.cpu
      ? escapeHtml(`${step.cpu.harness ?? "—"} / ${step.cpu.anvil ?? "—"} / ${step.cpu.machine ?? "—"}`)
      : "—";
  return (
    table(
      "steps",
      [
        { label: "" },
        { label: "step" },
        { label: "offered", numeric: true },
        { label: "achieved", numeric: true },
        { label: "paid", numeric: true },
        { label: "p50", numeric: true },
        { label: "p99", numeric: true },
        { label: "errors", numeric: true },
        { label: "cores: harness / anvil / machine", numeric: true },
        { label: "gas per settlement × batch", numeric: true },
        { label: "verdict" },
      ],
      result.steps.map((s) => ({
        cells: [
          mark(s.ok),
          escapeHtml(s.phase ?? "ramp"),
          escapeHtml(formatOffered(s.rate)),
          escapeHtml(formatRate(s.achieved)),
          escapeHtml(formatRate(s.paid)),
          optionalMs(s.p50),
          optionalMs(s.p99),
          formatCount(s.errors),
          cpu(s),
          escapeHtml(stepGas(s) ?? "—"),
          stepVerdict(s) + (s.trials ? ` <span class="note">${escapeHtml(trialWords(s).trim())}</span>` : ""),
        ],
        failed: !s.ok,
      })),
      "No step ran.",
    ) + criteria
  );
}

/** What limited the rate, and each phase's p50 at the knee and at the first rate that failed. */
function limitSection(result: CapacityResult): string {
  const { limit } = result;
  const notes = (result.notes ?? []).map((note) => `<li>${escapeHtml(note)}</li>`).join("");
  const noteList = notes ? `<ul id="capacity-notes">${notes}</ul>` : "";
  if (!limit) return noteList ? section("What to know about this search", noteList, true) : "";
  const held = result.steps.find((s) => s.ok && s.rate === result.highestRate);
  const failed = result.steps.find((s) => !s.ok && s.rate === limit.rate);
  const phases = ["challenge", "verify", "settle", "paid"] as const;
  const p50 = (step: CapacityStep | undefined, phase: (typeof phases)[number]) => {
    const value = step?.phases?.[phase]?.p50;
    return value === undefined ? "—" : escapeHtml(formatMs(value));
  };
  const rows = phases.map((phase) => ({
    cells: [escapeHtml(phase), p50(held, phase), p50(failed, phase)],
  }));
  return section(
    "What limited it",
    `<p id="limit"><span class="resource">${escapeHtml(limit.resource)}</span>: ${escapeHtml(limit.reason)}</p>${noteList}${table(
      "limit-phases",
      [
        { label: "phase p50" },
        { label: held ? `at ${formatOffered(held.rate)} (held)` : "held", numeric: true },
        { label: `at ${formatOffered(limit.rate)} (failed)`, numeric: true },
      ],
      rows,
    )}`,
    true,
  );
}

/** What settling cost at the knee, measured and at Base-like prices. */
function costSection(result: CapacityResult): string {
  const { cost } = result;
  if (!cost) return "";
  const { prices } = cost;
  const usd = (value: number) => `$${formatNumber(value)}`;
  const rows: [string, string][] = [
    [
      "settlements",
      `${formatCount(cost.settlements)} in ${formatCount(cost.transactions)} transactions (${cost.settlementsPerTransaction ?? "—"} per transaction)`,
    ],
    [
      "gas per settlement (measured)",
      cost.gasPerSettlement === null ? "—" : formatCount(cost.gasPerSettlement),
    ],
    [
      "gas per transaction (measured)",
      cost.gasPerTransaction === null ? "—" : formatCount(cost.gasPerTransaction),
    ],
    ["L1 data per transaction", `${cost.l1.fastLzBytes} FastLZ bytes, priced as ${cost.l1.estimatedBytes}`],
    [
      "USD per 1,000 settlements",
      `${usd(cost.usdPer1000Settlements.total)}: L2 ${usd(cost.usdPer1000Settlements.l2)} + L1 data ${usd(cost.usdPer1000Settlements.l1)}`,
    ],
    [
      "ETH burnt per hour",
      `${cost.ethPerHour.total} at ${cost.settlementsPerSecond} settlements/s; ${cost.ethPerHour.perRelayer} per relayer of ${prices.relayers}`,
    ],
    [
      "prices",
      `$${prices.ethUsd}/ETH; L2 ${prices.l2BaseFeeGwei} gwei; L1 base fee ${prices.l1.l1BaseFeeGwei} gwei, blob base fee ${prices.l1.blobBaseFeeGwei} gwei, scalars ${prices.l1.baseFeeScalar} / ${prices.l1.blobBaseFeeScalar} (${prices.l1.source})`,
    ],
  ];
  return section(
    `Cost per settlement at ${formatOffered(result.highestRate ?? 0)}`,
    table(
      "cost",
      [{ label: "" }, { label: "" }],
      rows.map(([label, value]) => ({ cells: [escapeHtml(label), escapeHtml(value)] })),
    ),
    true,
  );
}

/**
 * A capacity search as one self-contained HTML page: the highest rate that held, the latency and achieved
 * rate against the offered rate, and every step with its verdict. No network access.
 */
export function renderCapacityHtml(result: CapacityResult): string {
  const { settings } = result;
  const held = result.highestRate !== null;
  const meta: [string, string][] = [
    ["started", formatStart(result.startedAt)],
    ["steps", `${result.steps.length} of at most ${settings.maxSteps}`],
    ["each step", formatDuration(settings.stepDurationMs)],
    ["rates", `from ${formatOffered(settings.startRate)}, × ${formatNumber(settings.factor)} per step`],
  ];
  const headline = capacityHeadline(result);
  const verdict = `<div class="verdict"><div id="verdict">${
    result.highestRate === null ? "NO RATE HELD" : escapeHtml(formatOffered(result.highestRate))
  }</div><div class="why" id="headline">${escapeHtml(headline)}</div><div class="why" id="stopped">${escapeHtml(stopSentence(result))}</div></div>`;
  return page({
    title: `${held ? formatOffered(result.highestRate ?? 0) : "no rate held"} · ${result.scenario} · x402-devnet capacity`,
    ok: held,
    main: `${header("x402-devnet capacity search", result.scenario, result.description, meta, verdict)}
<div class="cards">
${capacityCards(result)}
</div>
${chart("chart-capacity-latency", "End-to-end latency by offered rate")}
${chart("chart-capacity-throughput", "Achieved against offered rate")}
${section("Steps", stepsTable(result), true)}${limitSection(result)}${costSection(result)}`,
    data: { id: "capacity-data", value: result },
    script: CAPACITY_SCRIPT,
  });
}
