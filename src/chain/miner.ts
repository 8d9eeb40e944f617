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
const { parentPort, workerData } = require("node:worker_threads");
const { rpcUrl, intervalMs } = workerData;
const body = '{"jsonrpc":"2.0","id":1,"method":"evm_mine","params":[]}';
const started = performance.now();
let n = 0;
let paused = false;
let mining = Promise.resolve();
parentPort.on("message", async (message) => {
  paused = message === "pause";
  await mining;
  parentPort.postMessage(message);
});
async function tick() {
  if (!paused) {
    mining = fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
      (r) => r.arrayBuffer(),
      () => undefined,
    );
    await mining;
  }
  n = Math.max(n + 1, Math.floor((performance.now() - started) / intervalMs));
  setTimeout(tick, Math.max(0, started + (n + 1) * intervalMs - performance.now()));
}
setTimeout(tick, intervalMs);
`;

export type Miner = {
  /** Stops mining (blocks due meanwhile are skipped, not made up later) until {@link Miner.resume}. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
};

/**
 * The miners running in this process, by the RPC URL they mine: the chain faults that pause a chain find
 * its miner here, since anvil itself has nothing to pause (`--no-mining`).
 */
const miners = new Map<string, Miner>();

/** The miner of ours that mines the chain at `rpcUrl`, if any. */
export function minerOf(rpcUrl: string): Miner | undefined {
  return miners.get(rpcUrl);
}

export function startMiner(rpcUrl: string, intervalMs: number): Miner {
  const worker = new Worker(MINER_SOURCE, { eval: true, workerData: { rpcUrl, intervalMs } });
  // The harness may exit while blocks are still being mined; its stop path ends the worker first.
  worker.unref();
  // Resolves once the worker has taken the message and any block it was mining is done: after pause(),
  // no block comes.
  const tell = (message: "pause" | "resume") =>
    new Promise<void>((resolve) => {
      const heard = (echo: unknown) => {
        if (echo !== message) return;
        worker.off("message", heard);
        resolve();
      };
      worker.on("message", heard);
      worker.postMessage(message);
    });
  const miner: Miner = {
    pause: () => tell("pause"),
    resume: () => tell("resume"),
    async stop() {
      if (miners.get(rpcUrl) === miner) miners.delete(rpcUrl);
      await worker.terminate();
    },
  };
  miners.set(rpcUrl, miner);
  return miner;
}
