/**
 * Reads of a block range that scale with it: logs a page at a time, gas a block at a time, so that what a
 * run of any length leaves on chain can be checked without holding it all (or asking for it all) at once.
 */
import type {
  AbiEvent,
  Chain,
  Client,
  Hash,
  IterateLogsParameters,
  IterateLogsReturnType,
  Transport,
} from "viem";
import { parseAbiItem } from "viem";
import { getBlock, getTransactionReceipt, iterateLogs } from "viem/actions";

/**
 * Logs a page aims at: ~1 MB of JSON for a token event, far under viem's 10 MB response limit, and a few
 * MB of decoded logs live at a time; larger pages read no faster from a local node.
 */
const DEFAULT_TARGET_LOGS = 2_000;
/** Most blocks in a page unless the caller says otherwise; nodes commonly refuse wider ranges. */
const DEFAULT_MAX_BLOCK_RANGE = 10_000n;
// A first page too wide for the node costs its whole answer before it is refused, so the first page is one
// block, and the next is sized to its density: a sparse range doubles to any width in a few pages.
const FIRST_BLOCK_RANGE = 1n;

export type LogPagesParameters<
  abiEvent extends AbiEvent | undefined = undefined,
  abiEvents extends readonly AbiEvent[] | readonly unknown[] | undefined = abiEvent extends AbiEvent
    ? [abiEvent]
    : undefined,
  strict extends boolean | undefined = undefined,
> = IterateLogsParameters<abiEvent, abiEvents, strict> & {
  /** Last block, inclusive: a number, so that the range cannot move while it is read. */
  toBlock: bigint;
  /**
   * Logs a page should hold (default 2,000). The range doubles (up to `blockRange`, default 10,000
   * blocks) after a page of less than half as many, and narrows in proportion after a page of more.
   */
  targetLogs?: number;
};

/**
 * The logs of a block range in contiguous pages of whole blocks, sized to the logs they hold. A page the
 * node refuses or answers too largely (viem's `ResponseBodyTooLargeError`, "query returned more than 10000
 * results", a timeout) is halved and asked again by viem's `iterateLogs`, whose range this steers page by
 * page; only a single block that is still too large fails. A page is read only once the previous one has
 * been consumed, so memory holds one page whatever the range.
 */
export async function* logPages<
  const abiEvent extends AbiEvent | undefined = undefined,
  const abiEvents extends readonly AbiEvent[] | readonly unknown[] | undefined = abiEvent extends AbiEvent
    ? [abiEvent]
    : undefined,
  strict extends boolean | undefined = undefined,
>(
  client: Client<Transport, Chain | undefined>,
  parameters: LogPagesParameters<abiEvent, abiEvents, strict>,
): IterateLogsReturnType<abiEvent, abiEvents, strict> {
  const { targetLogs = DEFAULT_TARGET_LOGS, blockRange: maxRange = DEFAULT_MAX_BLOCK_RANGE } = parameters;
  if (!(targetLogs >= 1)) throw new RangeError(`targetLogs must be at least 1, got ${targetLogs}`);
  if (maxRange < 1n) throw new RangeError(`blockRange must be at least 1n, got ${maxRange}`);
  let range = FIRST_BLOCK_RANGE;
  let from = parameters.fromBlock;
  while (from <= parameters.toBlock) {
    const pages = iterateLogs<Chain | undefined, abiEvent, abiEvents, strict>(client, {
      ...parameters,
      fromBlock: from,
      blockRange: range,
    });
    const { value: page } = await pages.next();
    await pages.return();
    if (!page) return;
    yield page;
    range = nextRange(page.toBlock - page.fromBlock + 1n, page.logs.length, targetLogs, maxRange);
    from = page.toBlock + 1n;
  }
}

/** The next page's width from the last one's: as many blocks as should hold `target` logs at its density. */
function nextRange(blocks: bigint, logs: number, target: number, max: bigint): bigint {
  let next = blocks;
  if (logs > target) next = (blocks * BigInt(target)) / BigInt(logs);
  else if (logs * 2 < target) next = blocks * 2n;
  if (next < 1n) return 1n;
  return next < max ? next : max;
}

/** Block reads in flight at once: headers are ~1 kB each, and a batching transport sends them together. */
const BLOCK_CONCURRENCY = 64;
/** Receipt reads in flight at once: a receipt carries every log of its transaction (a batch of hundreds). */
const RECEIPT_CONCURRENCY = 8;

/**
 * Gas the given transactions used, keyed by the block each is in. A block whose transactions are exactly
 * these gives its header's `gasUsed` (one small read per block, where receipts are one read per transaction
 * and carry every log again); a block that also holds others falls back to these transactions' receipts.
 * Reads run a bounded number at a time.
 */
export async function gasUsedByTransactions(
  client: Client<Transport, Chain | undefined>,
  transactionsByBlock: ReadonlyMap<bigint, ReadonlySet<Hash>>,
): Promise<bigint> {
  const blocks = [...transactionsByBlock];
  const mixed: Hash[] = [];
  let total = 0n;
  await inBatches(blocks, BLOCK_CONCURRENCY, async ([blockNumber, ours]) => {
    const block = await getBlock(client, { blockNumber });
    // Ours are among the block's transactions, so as many means the same ones.
    if (block.transactions.length === ours.size) total += block.gasUsed;
    else mixed.push(...ours);
  });
  await inBatches(mixed, RECEIPT_CONCURRENCY, async (hash) => {
    const receipt = await getTransactionReceipt(client, { hash });
    total += receipt.gasUsed;
  });
  return total;
}

async function inBatches<T>(items: readonly T[], size: number, each: (item: T) => Promise<void>) {
  for (let start = 0; start < items.length; start += size) {
    await Promise.all(items.slice(start, start + size).map(each));
  }
}

/** ERC-20's Transfer, which USDC logs for every change of a balance (mints and burns included). */
export const TRANSFER_EVENT = parseAbiItem(
  "event Transfer(address indexed from, address indexed to, uint256 value)",
);
