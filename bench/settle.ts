/**
 * Settlements per second through `POST /settle`, each run on a fresh anvil (anvil slows as its state
 * grows): ours (a pool of relayer keys, batching through Multicall3) against the official
 * `x402Facilitator` (one key), under the `instant` profile (automine) and with 0.2 s blocks. Every request
 * carries a distinct authorization, none is sent twice within a run, and only `success: true` answers
 * that are not duplicates count. The block height at the end of each run is reported with the figure.
 */
import { DEFAULT_MNEMONIC, deriveAccounts, HD_RANGES } from "../src/chain/index.ts";
import { cpuMeter, startChild } from "./lib/child.ts";
import { benchDevnet, facilitatorBody, signPayments } from "./lib/devnet.ts";
import { type LoadResult, saturate } from "./lib/load.ts";
import { benchArgs, type Figure, isMain, log, type Results, round, sideBySide, table } from "./lib/report.ts";

export type SettleBenchOptions = { quick: boolean };

type Mining = { name: string; key: string; blockTime?: number };

type Setup = {
  impl: "ours" | "official";
  relayers: number;
  connections: number;
  maxBatch?: number;
};

const PAYERS = 200;

const MINING: readonly Mining[] = [
  { name: "instant", key: "settle/instant" },
  { name: "0.2 s blocks", key: "settle/block-0.2s", blockTime: 0.2 },
];

/**
 * Ours, per mining mode. Under automine every transaction is a block, mined one after the other, and a
 * block costs anvil time in proportion to its whole state: two keys (one transaction mined while the next
 * fills) and batches of up to 200 settle the most. With 0.2 s blocks every key's transaction lands in the
 * next block, so more keys mean more per block; throughput is then connections / latency (about two blocks).
 */
function ours(mining: Mining): Setup {
  return mining.blockTime
    ? { impl: "ours", relayers: 8, connections: 1024, maxBatch: 100 }
    : { impl: "ours", relayers: 2, connections: 512, maxBatch: 200 };
}

/**
 * The official facilitator lets viem take each transaction's nonce from the node, so concurrent settles
 * from its one key collide ("nonce too low", "replacement underpriced"); x402's own e2e suite serialises
 * them. It is measured one settle at a time, where it settles most.
 */
const OFFICIAL: Setup = { impl: "official", relayers: 1, connections: 1 };

export type SettleRun = LoadResult & { height: bigint; cores: Record<string, number | undefined> };

/**
 * One run on a fresh devnet. `bodies` are `/settle` bodies signed by the devnet's payers (the same keys on
 * every devnet of the default mnemonic), so one set serves every run.
 */
async function settleRun(
  setup: Setup,
  mining: Mining,
  seconds: number,
  bodies: readonly string[],
): Promise<SettleRun> {
  const bench = await benchDevnet({
    payers: PAYERS,
    relayers: setup.relayers,
    devnet: mining.blockTime ? { blockTime: mining.blockTime } : { profile: "instant" },
  });
  try {
    const server = await startChild<{ url: string; pid: number }>("facilitator.ts", {
      impl: setup.impl,
      rpcUrl: bench.devnet.rpcUrl,
      chainId: bench.devnet.chainId,
      relayerKeys: bench.relayers.map((r) => r.privateKey),
      maxBatch: setup.maxBatch,
    });
    try {
      let i = 0;
      const next = () => {
        const body = bodies[i++];
        return body === undefined ? undefined : { body };
      };
      const meter = cpuMeter({ facilitator: server.pid, anvil: bench.anvilPid, load: process.pid });
      await meter.start();
      const result = await saturate({
        url: server.info.url,
        path: "/settle",
        connections: setup.connections,
        // Connections open, JIT warm, nonces and fees cached, batches full: then the window opens.
        warmupSeconds: setup.impl === "ours" ? 1 : 0.5,
        seconds,
        next,
        accept: (status, body) =>
          status === 200 && body.includes('"success":true') && !body.includes('"duplicate"'),
      });
      const cores = await meter.stop();
      const { blockNumber } = await bench.devnet.status();
      log(
        `settle ${setup.impl} (${mining.name}): ${round(result.rate)}/s, ${result.accepted} settled, ` +
          `${result.failed} failed, p50 ${result.p50} ms, p99 ${result.p99} ms, height ${blockNumber}, ` +
          `CPU cores ${JSON.stringify(cores)}`,
      );
      if (result.samples.length) log(`  e.g. ${result.samples[0]}`);
      return { ...result, height: blockNumber, cores };
    } finally {
      await server.stop();
    }
  } finally {
    await bench.stop();
  }
}

/** Signed `/settle` bodies for the payers every bench devnet funds; valid on any of them. */
function settleBodies(count: number): string[] {
  const payers = deriveAccounts(DEFAULT_MNEMONIC, PAYERS);
  const [payee] = deriveAccounts(DEFAULT_MNEMONIC, 1, HD_RANGES.started.payees);
  if (!payee) throw new Error("payee derivation failed");
  return signPayments(payers, payee.address, count).map(facilitatorBody);
}

export async function benchSettle(options: SettleBenchOptions): Promise<Results> {
  const seconds = options.quick ? 2 : 8;
  // Enough for 4,000 settlements/s; a run that uses them all up ends early and counts the time it took.
  const bodies = settleBodies(4_000 * (seconds + 1));
  const results: Results = {};
  for (const mining of MINING) {
    const setup = ours(mining);
    const mine = await settleRun(setup, mining, seconds, bodies);
    const official = await settleRun(OFFICIAL, mining, seconds, bodies);
    const figure: Figure = {
      ...sideBySide(mine.rate, official.rate, "settle/s"),
      p50: mine.p50,
      p99: mine.p99,
      notes:
        `ours: ${setup.relayers} keys, batches ≤ ${setup.maxBatch}, ${setup.connections} connections, ` +
        `${mine.failed} failed, end height ${mine.height}; official: 1 key, 1 connection, ` +
        `${official.failed} failed, end height ${official.height}, p50 ${official.p50} ms`,
    };
    results[mining.key] = figure;
  }
  return results;
}

if (isMain(import.meta.url)) {
  const results = await benchSettle(benchArgs());
  console.log(table(results));
}
