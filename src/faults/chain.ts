import { type Address, type Hash, type Hex, MethodNotFoundRpcError, parseGwei } from "viem";
import { type DevnetClient, DevnetError, minerOf } from "../chain/index.ts";

// anvil takes its mining interval in whole seconds over RPC (`evm_setIntervalMining` is a u64), although
// `--block-time` accepts fractions; a sub-second interval could be paused but never restored.
function assertRestorable(blockTime: number | undefined): void {
  if (blockTime !== undefined && !(Number.isInteger(blockTime) && blockTime > 0))
    throw new RangeError(
      `anvil can only resume interval mining in whole seconds; a block time of ${blockTime} s cannot be paused and restored.`,
    );
}

/** The harness's own interval miner of the chain `client` talks to, when it mines a pruned devnet. */
function ownMiner(client: DevnetClient) {
  const url = client.chain?.rpcUrls.default.http[0];
  return url === undefined ? undefined : minerOf(url);
}

/**
 * Stops block production: transactions sent meanwhile wait in the pool. Pass the devnet's `blockTime`
 * (`devnet.blockTime`): under interval mining, turning automine off is not enough, the interval is stopped.
 * A pruned devnet's blocks come from the harness's own miner (anvil runs with `--no-mining`), which is
 * paused instead, at any block time.
 */
export async function pauseMining(client: DevnetClient, blockTime?: number): Promise<void> {
  const miner = ownMiner(client);
  if (miner) return miner.pause();
  assertRestorable(blockTime);
  if (blockTime === undefined) await client.setAutomine(false);
  else await client.setIntervalMining({ interval: 0 });
}

/**
 * Restarts block production as the devnet had it. Under automine, anvil mines what waited in the pool at
 * once; under interval mining, in the next block.
 */
export async function resumeMining(client: DevnetClient, blockTime?: number): Promise<void> {
  const miner = ownMiner(client);
  if (miner) return miner.resume();
  assertRestorable(blockTime);
  if (blockTime === undefined) await client.setAutomine(true);
  else await client.setIntervalMining({ interval: blockTime });
}

/**
 * Removes a pending transaction from anvil's pool, as a node that lost it would. True if it was pending;
 * false if anvil did not hold it (unknown, or already mined: a mined transaction cannot be dropped).
 */
export async function dropTransaction(client: DevnetClient, hash: Hash): Promise<boolean> {
  const dropped = await client.request<{ Parameters: [Hash]; ReturnType: Hash | null }>({
    method: "anvil_dropTransaction",
    params: [hash],
  });
  return dropped !== null;
}

/**
 * Sets the base fee of the next block only. EIP-1559 then lets it fall by at most 1/8 a block, so the
 * spike lingers for a few blocks; transactions priced before it are rejected until it has decayed.
 */
export async function spikeBaseFee(client: DevnetClient, gwei: number): Promise<void> {
  if (!(Number.isFinite(gwei) && gwei >= 0)) throw new RangeError(`gwei must be >= 0, got ${gwei}.`);
  // toFixed keeps parseGwei away from exponent notation (String(1e-7) is "1e-7").
  await client.setNextBlockBaseFeePerGas({ baseFeePerGas: parseGwei(gwei.toFixed(9)) });
}

/** Empties an address's ETH ("relayer out of ETH"); returns the balance it had, to restore it later. */
export async function drainEth(client: DevnetClient, address: Address): Promise<bigint> {
  const balance = await client.getBalance({ address });
  await client.setBalance({ address, value: 0n });
  return balance;
}

/**
 * anvil 1.7.1 does not undo all of a reorg on a forked chain: storage the dropped blocks wrote stays written
 * (an EIP-3009 authorization stays used while the balances it moved are restored), so a settlement put back
 * reverts with "authorization is used or canceled" and the fault reports a loss no real chain would have.
 * A reorg there is refused rather than faked. A node without `anvil_nodeInfo` is taken as it is.
 */
async function assertNotForked(client: DevnetClient): Promise<void> {
  const info = await client
    .request<{ Parameters: []; ReturnType: { forkConfig?: { forkUrl?: string | null } } }>({
      method: "anvil_nodeInfo",
      params: [],
    })
    .catch(() => undefined);
  if (info?.forkConfig?.forkUrl) {
    throw new DevnetError(
      "anvil does not undo a reorg faithfully on a forked chain: storage the dropped blocks wrote stays written, so a settlement put back would revert.",
      "The flashblocks and base profiles run as a fork of an empty chain (skipped state roots), and --fork-url is a fork: inject reorgs on --profile instant.",
    );
  }
}

export type ReorgOptions = {
  /** Put the removed transactions into the replacement blocks, as a real reorg often does (default false). */
  reinclude?: boolean;
};

export type ReorgResult = {
  /** `anvil_reorg`, or `anvil_rollback` plus re-mining where a node lacks `anvil_reorg`. */
  via: "anvil_reorg" | "anvil_rollback";
  /** Hashes of the transactions that were in the replaced blocks. */
  transactions: Hash[];
};

/**
 * Replaces the newest `depth` blocks with new ones at the same heights (new block hashes).
 *
 * What anvil 1.7.1 does to the transactions of the replaced blocks: they are gone. Their receipts and
 * lookups return null, the state they wrote is reverted (balances, the sender's nonce), and they are not
 * returned to the pool, so nothing mines them again unless someone resubmits the signed transaction. With
 * `reinclude`, anvil mines them into the replacement blocks at the same offsets: same transaction hash, same
 * height, a new block hash. Under interval mining, pause mining first, or a block mined meanwhile shifts
 * which blocks are replaced.
 */
export async function reorg(
  client: DevnetClient,
  depth: number,
  options: ReorgOptions = {},
): Promise<ReorgResult> {
  if (!(Number.isInteger(depth) && depth >= 1))
    throw new RangeError(`depth must be an integer >= 1, got ${depth}.`);
  await assertNotForked(client);
  const head = await client.getBlockNumber({ cacheTime: 0 });
  if (BigInt(depth) > head) throw new RangeError(`depth ${depth} reaches below genesis (head is ${head}).`);
  const blocks = await Promise.all(
    Array.from({ length: depth }, (_, offset) =>
      client.getBlock({ blockNumber: head - BigInt(depth - 1 - offset) }),
    ),
  );
  const transactions = blocks.flatMap((block) => block.transactions);
  // anvil_reorg's pairs: a signed transaction and the offset of the replacement block to mine it in.
  const pairs: [Hex, number][] = options.reinclude
    ? await Promise.all(
        blocks.flatMap((block, offset) =>
          block.transactions.map(
            async (hash): Promise<[Hex, number]> => [await rawTransaction(client, hash), offset],
          ),
        ),
      )
    : [];

  try {
    await client.request<{ Parameters: [number, [Hex, number][]]; ReturnType: null }>({
      method: "anvil_reorg",
      params: [depth, pairs],
    });
    return { via: "anvil_reorg", transactions };
  } catch (error) {
    if (!(error instanceof MethodNotFoundRpcError)) throw historyPruned(error);
  }
  await client
    .request<{ Parameters: [number]; ReturnType: null }>({ method: "anvil_rollback", params: [depth] })
    .catch((error: unknown) => {
      throw historyPruned(error);
    });
  // Resubmitted transactions land wherever the devnet's mining puts them (one block each under automine).
  for (const [serializedTransaction] of pairs) await client.sendRawTransaction({ serializedTransaction });
  const height = await client.getBlockNumber({ cacheTime: 0 });
  if (height < head) await client.mine({ blocks: Number(head - height) });
  return { via: "anvil_rollback", transactions };
}

/** anvil with pruned history has no state to rewind to past its newest blocks', and says only "Required data unavailable". */
function historyPruned(error: unknown): unknown {
  if (!(error instanceof Error && /required data unavailable/i.test(error.message))) return error;
  return new DevnetError(
    "This devnet keeps the state of its newest blocks only (history: pruned, the flashblocks and base profiles' default), so it cannot reorg this deep.",
    'Start it with history: "full" (`--history full`), or use the instant profile.',
    { cause: error },
  );
}

async function rawTransaction(client: DevnetClient, hash: Hash): Promise<Hex> {
  const raw = await client.request<{ Parameters: [Hash]; ReturnType: Hex | null }>({
    method: "eth_getRawTransactionByHash",
    params: [hash],
  });
  if (!raw) throw new Error(`The node has no raw form of transaction ${hash}.`);
  return raw;
}

/** Hashes of the transactions waiting in the pool (mining paused, say). */
export async function pendingTransactions(client: DevnetClient): Promise<Hash[]> {
  const content = await client.getTxpoolContent();
  return Object.values(content.pending).flatMap((byNonce) =>
    Object.values(byNonce).map((tx) => (tx as { hash: Hash }).hash),
  );
}

/** Waits, block by block, until the pool is empty (mining resumed); false if it is not within `ms`. */
export async function poolDrained(client: DevnetClient, ms = 5_000): Promise<boolean> {
  const empty = async () => {
    const status = await client.getTxpoolStatus();
    return status.pending === 0 && status.queued === 0;
  };
  if (await empty()) return true;
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const finish = (drained: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unwatch();
      resolve(drained);
    };
    const timer = setTimeout(() => finish(false), ms);
    // The pool only drains as blocks are mined: each new block is when to look again.
    const unwatch = client.watchBlockNumber({
      emitOnBegin: true,
      pollingInterval: 20,
      onBlockNumber: () => {
        void empty().then(
          (drained) => drained && finish(true),
          () => undefined,
        );
      },
    });
  });
}
