import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Address, createPublicClient, http, parseAbiItem, ResponseBodyTooLargeError } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Devnet, devnetChain, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { logPages, type PaidRecord, type SettlementScan, scanSettlements } from "../../src/scenario/index.ts";
import { sendSettlements, settleMany } from "./chain-settlements.ts";

const authorizationUsed = parseAbiItem(
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
);
const PAYEES = [
  "0x00000000000000000000000000000000000b0b01",
  "0x00000000000000000000000000000000000b0b02",
] as const;

/**
 * The run's settlements read the way the runner read them before paging: one eth_getLogs for the whole
 * range, every receipt at once, and the arithmetic over the arrays. What a paged scan must equal.
 */
async function oneShot(
  client: Devnet["client"],
  payers: readonly Address[],
  paid: readonly PaidRecord[],
  fromBlock: bigint,
  toBlock: bigint,
): Promise<SettlementScan> {
  const payerSet = new Set(payers.map((a) => a.toLowerCase()));
  const ours = (
    await client.getLogs({ address: USDC_ADDRESS, event: authorizationUsed, fromBlock, toBlock })
  ).filter((log) => payerSet.has(String(log.args.authorizer).toLowerCase()));
  const keys = ours.map((log) => `${log.args.authorizer}:${log.args.nonce}`);
  const available = new Map<string, number>();
  for (const log of ours) {
    const key = `${String(log.args.authorizer).toLowerCase()}:${log.transactionHash}`;
    available.set(key, (available.get(key) ?? 0) + 1);
  }
  let paidWithoutSettlement = 0;
  for (const p of paid) {
    const key = `${p.payer.toLowerCase()}:${p.transaction}`;
    const left = p.transaction ? (available.get(key) ?? 0) : 0;
    if (left === 0) paidWithoutSettlement += 1;
    else available.set(key, left - 1);
  }
  const transactions = [...new Set(ours.map((log) => log.transactionHash))];
  const receipts = await Promise.all(transactions.map((hash) => client.getTransactionReceipt({ hash })));
  return {
    settlements: ours.length,
    duplicates: keys.length - new Set(keys).size,
    transactions: transactions.length,
    gasUsed: receipts.reduce((total, r) => total + r.gasUsed, 0n),
    paidWithoutSettlement,
    settlementsWithoutPaid: [...available.values()].reduce((total, n) => total + n, 0),
  };
}

/** A client on the devnet that counts the eth_getLogs calls it makes, with a response size limit of `maxBytes`. */
function countingClient(devnet: Devnet, maxBytes?: number, url = devnet.rpcUrl) {
  const calls = { getLogs: 0 };
  const client = createPublicClient({
    chain: devnetChain(url, devnet.chainId),
    transport: http(url, {
      maxResponseBodySize: maxBytes,
      retryCount: 0,
      onFetchRequest: (_request, init) => {
        if (String(init.body).includes('"eth_getLogs"')) calls.getLogs += 1;
      },
    }),
  });
  return { client, calls };
}

/**
 * A node front that refuses, as hosted nodes do, an eth_getLogs whose answer holds more than `limit`
 * logs ("query returned more than N results", -32005); everything else goes to anvil unchanged.
 */
async function refusingNode(
  target: string,
  limit: number,
): Promise<{ url: string; refused(): number; stop(): Promise<void> }> {
  let refused = 0;
  const server: Server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    const answer = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    let text = await answer.text();
    const call = JSON.parse(body) as { id: number; method: string };
    if (call.method === "eth_getLogs") {
      const { result } = JSON.parse(text) as { result?: unknown[] };
      if (result && result.length > limit) {
        refused += 1;
        text = JSON.stringify({
          jsonrpc: "2.0",
          id: call.id,
          error: { code: -32005, message: `query returned more than ${limit} results` },
        });
      }
    }
    response.writeHead(200, { "content-type": "application/json" }).end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    refused: () => refused,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("paged chain reads", () => {
  let devnet: Devnet;
  let payers: Address[];
  let paid: PaidRecord[];
  let fromBlock: bigint;
  let toBlock: bigint;
  let expected: SettlementScan;

  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 6 });
    const ours = devnet.accounts.slice(0, 5);
    const stranger = devnet.accounts[5];
    if (!stranger) throw new Error("no sixth account");
    payers = ours.map((a) => a.address);
    fromBlock = (await devnet.client.getBlockNumber({ cacheTime: 0 })) + 1n;

    // Batches and lone settlements, someone else's settlements, a stretch of empty blocks, and a block
    // where settlements share the block with a transaction that is not one.
    const batched = [
      ...(await settleMany(devnet, { count: 40, payers: ours, payees: PAYEES, perTransaction: 40 })),
      ...(await settleMany(devnet, { count: 80, payers: ours, payees: PAYEES, perTransaction: 10 })),
    ];
    const alone = await settleMany(devnet, { count: 10, payers: ours, payees: PAYEES, perTransaction: 1 });
    await settleMany(devnet, { count: 15, payers: [stranger], payees: PAYEES, perTransaction: 5 });
    await devnet.client.mine({ blocks: 50 });
    await devnet.client.setAutomine(false);
    const shared = [
      await sendSettlements(devnet, [
        { payer: ours[0] as (typeof ours)[0], payTo: PAYEES[0], amount: 7n },
        { payer: ours[1] as (typeof ours)[0], payTo: PAYEES[1], amount: 7n },
        { payer: ours[0] as (typeof ours)[0], payTo: PAYEES[1], amount: 7n },
      ]),
      await sendSettlements(devnet, [{ payer: ours[2] as (typeof ours)[0], payTo: PAYEES[0], amount: 7n }]),
    ];
    await devnet.client.sendUnsignedTransaction({
      from: stranger.address,
      to: PAYEES[0],
      value: 1n,
      gas: 21_000n,
    });
    await devnet.client.mine({ blocks: 1 });
    await devnet.client.setAutomine(true);
    const later = await settleMany(devnet, { count: 60, payers: ours, payees: PAYEES, perTransaction: 5 });
    toBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });

    // One settlement no paid response stands for, one paid response naming a transaction that settled
    // nothing of its payer's, and one naming none.
    const all = [...batched, ...alone, ...shared.flatMap((s) => s.paid), ...later];
    const [dropped, ...kept] = all;
    paid = [
      ...kept,
      { ...(dropped as PaidRecord), transaction: later[0]?.transaction, payer: stranger.address },
      { ...(dropped as PaidRecord), transaction: undefined },
    ];
    expected = await oneShot(devnet.client, payers, paid, fromBlock, toBlock);
  });
  afterAll(() => devnet?.stop());

  it("the one-shot read sees what was settled", () => {
    expect(expected).toEqual({
      settlements: 194,
      duplicates: 0,
      transactions: 33,
      gasUsed: expect.any(BigInt),
      paidWithoutSettlement: 2,
      settlementsWithoutPaid: 1,
    });
  });

  it("a scan with the default page size gives the one-shot aggregates", async () => {
    expect(await scanSettlements(devnet.client, { payers, paid, fromBlock, toBlock })).toEqual(expected);
  });

  it("many small pages (one log aimed at) give the same aggregates", async () => {
    const pages: bigint[] = [];
    const scan = await scanSettlements(devnet.client, {
      payers,
      paid,
      fromBlock,
      toBlock,
      targetLogs: 1,
      onPage: (progress) => pages.push(progress.toBlock),
    });
    expect(scan).toEqual(expected);
    expect(pages.length).toBeGreaterThan(10);
    expect(pages.at(-1)).toBe(toBlock);
  });

  it("a page too large for the client's response limit is halved until it fits", async () => {
    // The largest block's logs (40 settlements) are ~23 kB: 32 kB holds it, and not it with its neighbours.
    const { client, calls } = countingClient(devnet, 32_000);
    await expect(
      client.getLogs({ address: USDC_ADDRESS, event: authorizationUsed, fromBlock, toBlock }),
    ).rejects.toBeInstanceOf(ResponseBodyTooLargeError);
    calls.getLogs = 0;
    let pages = 0;
    const scan = await scanSettlements(client, {
      payers,
      paid,
      fromBlock,
      toBlock,
      targetLogs: 1_000_000,
      onPage: () => {
        pages += 1;
      },
    });
    expect(scan).toEqual(expected);
    expect(calls.getLogs).toBeGreaterThan(pages);
  });

  it("a page the node refuses for too many results is halved until it is answered", async () => {
    const node = await refusingNode(devnet.rpcUrl, 45);
    try {
      const { client } = countingClient(devnet, undefined, node.url);
      expect(
        await scanSettlements(client, { payers, paid, fromBlock, toBlock, targetLogs: 1_000_000 }),
      ).toEqual(expected);
      expect(node.refused()).toBeGreaterThan(0);
    } finally {
      await node.stop();
    }
  });

  it("a single block larger than the response limit cannot be split, and fails", async () => {
    const { client } = countingClient(devnet, 10_000);
    await expect(scanSettlements(client, { payers, paid, fromBlock, toBlock })).rejects.toBeInstanceOf(
      ResponseBodyTooLargeError,
    );
  });

  it("logPages: contiguous whole-block pages with every log once, widening over sparse blocks", async () => {
    const widths: bigint[] = [];
    const seen: string[] = [];
    let next = fromBlock;
    for await (const page of logPages(devnet.client, {
      address: USDC_ADDRESS,
      event: authorizationUsed,
      fromBlock,
      toBlock,
      targetLogs: 7,
    })) {
      expect(page.fromBlock).toBe(next);
      expect(page.endBlock).toBe(toBlock);
      next = page.toBlock + 1n;
      widths.push(page.toBlock - page.fromBlock + 1n);
      for (const log of page.logs) {
        expect(log.blockNumber >= page.fromBlock && log.blockNumber <= page.toBlock).toBe(true);
        seen.push(`${log.transactionHash}:${log.logIndex}`);
      }
    }
    expect(next).toBe(toBlock + 1n);
    const all = await devnet.client.getLogs({
      address: USDC_ADDRESS,
      event: authorizationUsed,
      fromBlock,
      toBlock,
    });
    expect(seen).toEqual(all.map((log) => `${log.transactionHash}:${log.logIndex}`));
    // Past the batches pages narrow to single blocks; the empty stretch is crossed in pages wider than the first.
    expect(widths.some((w) => w > 16n)).toBe(true);
    expect(widths).toContain(1n);
  });

  it("no payers, or an empty range: nothing settled, every paid response unmatched", async () => {
    const none = { settlements: 0, duplicates: 0, transactions: 0, gasUsed: 0n, settlementsWithoutPaid: 0 };
    expect(await scanSettlements(devnet.client, { payers: [], paid, fromBlock, toBlock })).toEqual({
      ...none,
      paidWithoutSettlement: paid.length,
    });
    expect(
      await scanSettlements(devnet.client, { payers, paid: [], fromBlock: toBlock + 1n, toBlock }),
    ).toEqual({ ...none, paidWithoutSettlement: 0 });
  });
});
