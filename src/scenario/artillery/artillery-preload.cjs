// Preloaded into `artillery run`'s main process (NODE_OPTIONS=--require) by the harness.
//
// Worker threads: Artillery runs cpus−1 of them and has no setting for it, so X402_ARTILLERY_WORKERS=N
// shows it N+1 cpus.
//
// Early stop: Artillery stopped by SIGINT writes no report (`-o` is written only when every phase has
// ended). So every merged period Artillery reports is kept, and one line per period goes to
// X402_ARTILLERY_PERIODS (the harness waits there for the last period of an interrupted run to be
// merged); when Artillery stops early, the kept periods are merged as Artillery merges them at the end
// and written to X402_ARTILLERY_PARTIAL in its report's format.
const os = require("node:os");
const { appendFileSync, writeFileSync } = require("node:fs");
const { join, resolve } = require("node:path");
const { pathToFileURL } = require("node:url");

const workers = Number(process.env.X402_ARTILLERY_WORKERS);
if (Number.isInteger(workers) && workers > 0) {
  const cpus = os.cpus;
  os.cpus = () => {
    const real = cpus();
    return Array.from({ length: workers + 1 }, (_, i) => real[i % real.length]);
  };
}

const periodsFile = process.env.X402_ARTILLERY_PERIODS;
const partialFile = process.env.X402_ARTILLERY_PARTIAL;
// Worker threads load this file too; only the main process runs the launcher.
if (periodsFile && partialFile && require("node:worker_threads").isMainThread) {
  const periods = [];
  const plain = (stats) => ({
    period: stats.period,
    counters: { ...stats.counters },
    summaries: { ...stats.summaries },
    histograms: { ...stats.summaries },
    rates: { ...stats.rates },
    firstMetricAt: stats.firstMetricAt,
    lastMetricAt: stats.lastMetricAt,
  });
  const hook = (artillery) => {
    artillery.globalEvents.on("stats", (stats) => {
      periods.push({ stats, json: plain(stats) });
      appendFileSync(periodsFile, `${JSON.stringify({ period: stats.period })}\n`);
    });
    artillery.ext({
      ext: "beforeExit",
      method: async (event) => {
        if (!event.earlyStop) return;
        // Artillery's own merge: counters add, sketches merge.
        const root = resolve(process.argv[1], "..", "..");
        const { SSMS } = await import(pathToFileURL(join(root, "dist", "lib", "core", "ssms.js")).href);
        const intermediate = periods.map((p) => p.json);
        const aggregate = SSMS.pack(periods.map((p) => p.stats));
        aggregate.summaries = {};
        for (const [name, sketch] of Object.entries(aggregate.histograms ?? {}))
          aggregate.summaries[name] = SSMS.summarizeHistogram(sketch);
        aggregate.histograms = aggregate.summaries;
        const firsts = intermediate.map((p) => p.firstMetricAt).filter((t) => t !== undefined);
        const lasts = intermediate.map((p) => p.lastMetricAt).filter((t) => t !== undefined);
        if (firsts.length > 0) aggregate.firstMetricAt = Math.min(...firsts);
        if (lasts.length > 0) aggregate.lastMetricAt = Math.max(...lasts);
        writeFileSync(partialFile, JSON.stringify({ aggregate, intermediate }));
      },
    });
  };
  // Artillery creates its global object after preloads run.
  const wait = setInterval(() => {
    if (globalThis.artillery?.ext && globalThis.artillery?.globalEvents) {
      clearInterval(wait);
      hook(globalThis.artillery);
    }
  }, 5);
  wait.unref();
}
