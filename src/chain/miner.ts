import { Worker } from "node:worker_threads";

/**
 * Mines a block every `intervalMs` by `evm_mine`, from a worker thread so that a busy harness (the load
 * runs in the same process) does not delay blocks. Each block is due at a fixed offset from the start, so
 * a late one does not push back those after it; a mining call that fails is skipped, not retried.
 *
 * Why not anvil's own `--block-time`: anvil 1.7.1 raises its in-memory state history to 1,500 blocks for
 * any block time of 2 s or less, over `--prune-history N`, and each kept state grows with the chain, so a
 * 0.2 s chain grew ~6 MB/s under load. Mined from here, `--prune-history 16` holds.
 */
const MINER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { rpcUrl, intervalMs } = workerData;
const body = '{"jsonrpc":"2.0","id":1,"method":"evm_mine","params":[]}';
const started = performance.now();
let n = 0;
async function tick() {
  await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
    (r) => r.arrayBuffer(),
    () => undefined,
  );
  n = Math.max(n + 1, Math.floor((performance.now() - started) / intervalMs));
  setTimeout(tick, Math.max(0, started + (n + 1) * intervalMs - performance.now()));
}
setTimeout(tick, intervalMs);
`;

export type Miner = { stop(): Promise<void> };

export function startMiner(rpcUrl: string, intervalMs: number): Miner {
  const worker = new Worker(MINER_SOURCE, { eval: true, workerData: { rpcUrl, intervalMs } });
  // The harness may exit while blocks are still being mined; its stop path ends the worker first.
  worker.unref();
  return {
    async stop() {
      await worker.terminate();
    },
  };
}
