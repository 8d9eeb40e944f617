import type { DevnetClient } from "./client.ts";
import { ChainStalledError } from "./errors.ts";

export type ChainStatus = { blockNumber: bigint; pending: number; queued: number };

export async function readChainStatus(client: DevnetClient): Promise<ChainStatus> {
  const [blockNumber, pool] = await Promise.all([
    client.getBlockNumber({ cacheTime: 0 }),
    client.getTxpoolStatus(),
  ]);
  return { blockNumber, pending: pool.pending, queued: pool.queued };
}

export type StallWatchOptions = {
  /** How long transactions may wait with no new block before it counts as a stall. */
  windowMs: number;
  intervalMs?: number;
  onStall: (error: ChainStalledError) => void;
};

/**
 * Under automine, anvil stops producing blocks once roughly 1,000-3,000 transactions are pending (a known
 * anvil bug). Senders bound what they keep in flight; this watcher says so when the chain stalls anyway:
 * transactions are pending and the height has not moved for `windowMs`. Returns a function that stops it.
 */
export function watchForStall(client: DevnetClient, options: StallWatchOptions): () => void {
  const intervalMs = options.intervalMs ?? Math.max(50, Math.floor(options.windowMs / 4));
  let lastHeight = -1n;
  let lastMove = Date.now();
  let reported = false;
  const timer = setInterval(async () => {
    const status = await readChainStatus(client).catch(() => undefined);
    if (!status) return;
    const now = Date.now();
    if (status.blockNumber !== lastHeight || status.pending === 0) {
      lastHeight = status.blockNumber;
      lastMove = now;
      reported = false;
      return;
    }
    if (!reported && now - lastMove >= options.windowMs) {
      reported = true;
      options.onStall(
        new ChainStalledError(
          `The chain stalled at block ${status.blockNumber}: ${status.pending} transactions pending, no block for ${now - lastMove} ms.`,
          "Keep fewer transactions in flight (anvil's automine stops after ~1,000), or call reset().",
        ),
      );
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
