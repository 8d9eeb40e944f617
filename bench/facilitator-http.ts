/**
 * `POST /verify` over HTTP: our facilitator against the official `x402Facilitator` behind the same fastify
 * app, each in its own process, driven by autocannon (50 connections) with distinct pre-signed payments
 * from 1,000 funded payers, on one devnet, in one run. Simulation on for both (the official default).
 * Only `isValid: true` answers count.
 */
import { cpuMeter, startChild } from "./lib/child.ts";
import { type BenchDevnet, benchDevnet, facilitatorBody, signPayments } from "./lib/devnet.ts";
import { type LoadResult, saturate } from "./lib/load.ts";
import { benchArgs, isMain, log, type Results, round, sideBySide, table } from "./lib/report.ts";

export type HttpOptions = {
  quick: boolean;
  connections?: number;
  seconds?: number;
  only?: "ours" | "official";
};

type VerifyRun = LoadResult & { cores: Record<string, number | undefined> };

async function verifyRate(
  bench: BenchDevnet,
  impl: "ours" | "official",
  bodies: readonly string[],
  connections: number,
  seconds: number,
  warmupSeconds: number,
): Promise<VerifyRun> {
  const server = await startChild<{ url: string; pid: number }>("facilitator.ts", {
    impl,
    rpcUrl: bench.devnet.rpcUrl,
    chainId: bench.devnet.chainId,
    relayerKeys: bench.relayers.map((r) => r.privateKey),
  });
  try {
    let i = 0;
    const meter = cpuMeter({ facilitator: server.pid, anvil: bench.anvilPid, load: process.pid });
    const metered = new Promise<void>((resolve) =>
      setTimeout(() => void meter.start().then(resolve), warmupSeconds * 1000),
    );
    const result = await saturate({
      url: server.info.url,
      path: "/verify",
      connections,
      // JIT, connection pools and the asset-code cache warm up before the window opens.
      warmupSeconds,
      seconds,
      next: () => ({ body: bodies[i++ % bodies.length] }),
      accept: (status, body) => status === 200 && body.includes('"isValid":true'),
    });
    await metered;
    const cores = await meter.stop();
    log(
      `/verify ${impl}: ${round(result.rate)}/s over ${result.seconds} s, p50 ${result.p50} ms, ` +
        `p99 ${result.p99} ms, ${result.failed} failed; CPU cores ${JSON.stringify(cores)}`,
    );
    if (result.samples.length) log(`  e.g. ${result.samples[0]}`);
    return { ...result, cores };
  } finally {
    await server.stop();
  }
}

export async function benchFacilitatorHttp(options: HttpOptions): Promise<Results> {
  const connections = options.connections ?? 50;
  const seconds = options.seconds ?? (options.quick ? 2 : 10);
  const warmup = options.quick ? 0.5 : 1;
  const bench = await benchDevnet({ payers: 1_000, relayers: 1 });
  try {
    // Verification moves no money, so a pool of distinct payments can be cycled without making any invalid.
    const count = options.quick ? 5_000 : 20_000;
    const bodies = signPayments(bench.payers, bench.payee.address, count).map(facilitatorBody);
    const ours =
      options.only === "official"
        ? undefined
        : await verifyRate(bench, "ours", bodies, connections, seconds, warmup);
    const official =
      options.only === "ours"
        ? undefined
        : await verifyRate(bench, "official", bodies, connections, seconds, warmup);
    if (!ours || !official) return {};
    const cores = (run: VerifyRun) =>
      `facilitator ${run.cores.facilitator}, anvil ${run.cores.anvil}, autocannon ${run.cores.load}`;
    return {
      "facilitator-http/verify": {
        ...sideBySide(ours.rate, official.rate, "verify/s"),
        p50: ours.p50,
        p99: ours.p99,
        notes:
          `${connections} connections, ${seconds} s, simulation on; official p50 ${official.p50} ms, ` +
          `p99 ${official.p99} ms; CPU cores: ours (${cores(ours)}), official (${cores(official)})`,
      },
    };
  } finally {
    await bench.stop();
  }
}

if (isMain(import.meta.url)) {
  const args = benchArgs();
  const flag = process.argv.find((a) => a === "--ours" || a === "--official");
  const only = flag ? (flag.slice(2) as "ours" | "official") : undefined;
  const results = await benchFacilitatorHttp({ quick: args.quick, only });
  console.log(table(results));
}
