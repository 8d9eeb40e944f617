/**
 * `npm run bench [-- --quick] [-- --only=devnet,verify,http,settle,permit2,e2e,batch,soak] [-- --out=path.json]`: every
 * benchmark in turn, a table on stdout and `bench/results/latest.json` (`{ machine, startedAt, results }`),
 * which `npm run bench:compare` checks against `bench/baseline.json`. `--quick` (CI) takes about three minutes, half of it the soak.
 */
import { startDevnet } from "../src/chain/index.ts";
import { benchBatch } from "./batch.ts";
import { benchE2e } from "./e2e.ts";
import { benchFacilitatorHttp } from "./facilitator-http.ts";
import {
  benchArgs,
  LATEST_RESULTS,
  log,
  machine,
  type Results,
  round,
  table,
  writeReport,
} from "./lib/report.ts";
import { benchPermit2 } from "./permit2.ts";
import { benchSettle } from "./settle.ts";
import { benchSoak } from "./soak.ts";
import { benchVerify } from "./verify.ts";

/** The issue-2 figure: a devnet with 1,000 funded wallets, from spawn to ready (target < 2 s). */
async function benchDevnetSetup(quick: boolean): Promise<Results> {
  const runs: number[] = [];
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    const started = performance.now();
    const devnet = await startDevnet({ accounts: 1_000 });
    runs.push((performance.now() - started) / 1000);
    await devnet.stop();
  }
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor((runs.length - 1) / 2)] ?? Number.NaN;
  log(`devnet setup (1,000 wallets): ${runs.map((r) => r.toFixed(3)).join(", ")} s`);
  return {
    "devnet/setup-1000": {
      ours: round(median),
      unit: "s",
      notes: `startDevnet({ accounts: 1000 }), median of ${runs.length}; issue-2 target < 2 s`,
    },
  };
}

const BENCHMARKS: Record<string, (quick: boolean) => Promise<Results>> = {
  devnet: benchDevnetSetup,
  verify: (quick) => benchVerify({ quick }),
  http: (quick) => benchFacilitatorHttp({ quick }),
  settle: (quick) => benchSettle({ quick }),
  permit2: (quick) => benchPermit2({ quick }),
  e2e: (quick) => benchE2e({ quick }),
  batch: (quick) => benchBatch({ quick }),
  soak: (quick) => benchSoak({ quick }),
};

async function main(): Promise<void> {
  const { quick, only } = benchArgs();
  const out = process.argv.find((a) => a.startsWith("--out="))?.slice("--out=".length) ?? LATEST_RESULTS;
  const unknown = (only ?? []).filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(", ")}; known: ${Object.keys(BENCHMARKS).join(", ")}\n`,
    );
    process.exit(2);
  }
  const startedAt = new Date().toISOString();
  const host = machine();
  const t0 = performance.now();
  const results: Results = {};
  for (const [name, run] of Object.entries(BENCHMARKS)) {
    if (only && !only.includes(name)) continue;
    log(`── ${name}${quick ? " (quick)" : ""}`);
    const started = performance.now();
    Object.assign(results, await run(quick));
    log(`── ${name}: ${round((performance.now() - started) / 1000)} s`);
  }
  const seconds = round((performance.now() - t0) / 1000);
  writeReport(out, {
    machine: { ...host, loadavgAfter: machine().loadavg },
    startedAt,
    durationSeconds: seconds,
    quick,
    results,
  });
  console.log(table(results));
  log(`${seconds} s; load average ${host.loadavg.join(" ")} before, ${machine().loadavg.join(" ")} after`);
  log(`wrote ${out}`);
}

await main();
