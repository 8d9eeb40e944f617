import { setTimeout as delay } from "node:timers/promises";
import { type Hash, parseGwei, TransactionNotFoundError, TransactionReceiptNotFoundError } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDevnetClient, type Devnet, type DevnetClient, startDevnet } from "../../src/chain/index.ts";
import {
  drainEth,
  dropTransaction,
  pauseMining,
  reorg,
  resumeMining,
  spikeBaseFee,
  startFaultProxy,
} from "../../src/faults/index.ts";

function parties(devnet: Devnet) {
  const [sender, recipient] = devnet.accounts;
  if (!sender || !recipient) throw new Error("accounts");
  return { account: privateKeyToAccount(sender.privateKey), recipient: recipient.address };
}

/** Sends 1,000 wei from the first devnet account to the second through `client`. */
const transfer = (devnet: Devnet, client: DevnetClient = devnet.client) => {
  const { account, recipient } = parties(devnet);
  return client.sendTransaction({ account, to: recipient, value: 1_000n });
};

describe("chain faults on an automine devnet", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 2 });
  });
  afterEach(async () => {
    // A failed test must not leave the next one with mining paused or a reorged chain.
    await resumeMining(devnet.client);
    await devnet.reset();
  });
  afterAll(() => devnet?.stop());

  const receiptOf = (hash: Hash) => devnet.client.getTransactionReceipt({ hash });

  it("pauseMining leaves a sent transaction pending until resumeMining", async () => {
    await pauseMining(devnet.client);
    const height = await devnet.client.getBlockNumber({ cacheTime: 0 });
    const hash = await transfer(devnet);
    expect(await devnet.client.getTxpoolStatus()).toEqual({ pending: 1, queued: 0 });
    await expect(receiptOf(hash)).rejects.toThrow(TransactionReceiptNotFoundError);
    expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(height);

    await resumeMining(devnet.client);
    const receipt = await devnet.client.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    expect(receipt.blockNumber).toBe(height + 1n);
  });

  it("refuses a sub-second block time, which anvil could not restore, before pausing anything", async () => {
    await expect(pauseMining(devnet.client, 0.2)).rejects.toThrow(RangeError);
    expect(await devnet.client.getAutomine()).toBe(true);
  });

  it("dropTransaction removes a pending transaction for good", async () => {
    const { recipient } = parties(devnet);
    const before = await devnet.client.getBalance({ address: recipient });
    await pauseMining(devnet.client);
    const hash = await transfer(devnet);
    expect(await dropTransaction(devnet.client, hash)).toBe(true);
    expect(await dropTransaction(devnet.client, hash)).toBe(false);
    expect(await devnet.client.getTxpoolStatus()).toEqual({ pending: 0, queued: 0 });

    await resumeMining(devnet.client);
    await devnet.client.mine({ blocks: 1 });
    await expect(devnet.client.getTransaction({ hash })).rejects.toThrow(TransactionNotFoundError);
    expect(await devnet.client.getBalance({ address: recipient })).toBe(before);
  });

  it("dropTransaction cannot take back a mined transaction", async () => {
    const hash = await transfer(devnet);
    await devnet.client.waitForTransactionReceipt({ hash });
    expect(await dropTransaction(devnet.client, hash)).toBe(false);
    expect((await receiptOf(hash)).status).toBe("success");
  });

  it("spikeBaseFee sets the next block's base fee, and transactions priced below it are refused", async () => {
    await spikeBaseFee(devnet.client, 500);
    await devnet.client.mine({ blocks: 1 });
    const block = await devnet.client.getBlock({ blockTag: "latest" });
    expect(block.baseFeePerGas).toBe(parseGwei("500"));
    const { account, recipient } = parties(devnet);
    await expect(
      devnet.client.sendTransaction({
        account,
        to: recipient,
        value: 1n,
        maxFeePerGas: parseGwei("100"),
        maxPriorityFeePerGas: 1n,
      }),
    ).rejects.toThrow(/fee/i);
  });

  it("drainEth leaves an address unable to pay for gas, and returns what it had", async () => {
    const { account } = parties(devnet);
    const had = await devnet.client.getBalance({ address: account.address });
    expect(await drainEth(devnet.client, account.address)).toBe(had);
    expect(await devnet.client.getBalance({ address: account.address })).toBe(0n);
    await expect(transfer(devnet)).rejects.toThrow(/funds/i);
  });

  it("reorg (anvil_reorg) replaces the block: the transfer is gone, its balance reverted, nothing re-mines it", async () => {
    const { account, recipient } = parties(devnet);
    const before = await devnet.client.getBalance({ address: recipient });
    const request = await devnet.client.prepareTransactionRequest({ account, to: recipient, value: 1_000n });
    const signed = await devnet.client.signTransaction(request);
    const hash = await devnet.client.sendRawTransaction({ serializedTransaction: signed });
    const mined = await devnet.client.waitForTransactionReceipt({ hash });

    expect(await reorg(devnet.client, 1)).toEqual({ via: "anvil_reorg", transactions: [hash] });
    expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(mined.blockNumber);
    const replacement = await devnet.client.getBlock({ blockNumber: mined.blockNumber });
    expect(replacement.hash).not.toBe(mined.blockHash);
    expect(replacement.transactions).toEqual([]);
    await expect(receiptOf(hash)).rejects.toThrow(TransactionReceiptNotFoundError);
    expect(await devnet.client.getBalance({ address: recipient })).toBe(before);
    expect(await devnet.client.getTransactionCount({ address: account.address })).toBe(request.nonce);
    expect(await devnet.client.getTxpoolStatus()).toEqual({ pending: 0, queued: 0 });

    // The nonce is free again, so resubmitting the same signed transaction lands it once more.
    await devnet.client.sendRawTransaction({ serializedTransaction: signed });
    expect((await devnet.client.waitForTransactionReceipt({ hash })).status).toBe("success");
    expect(await devnet.client.getBalance({ address: recipient })).toBe(before + 1_000n);
  });

  it("reorg with reinclude mines the transactions into the replacement blocks at the same heights", async () => {
    const { recipient } = parties(devnet);
    const first = await transfer(devnet);
    const second = await transfer(devnet);
    const minedFirst = await devnet.client.waitForTransactionReceipt({ hash: first });
    const minedSecond = await devnet.client.waitForTransactionReceipt({ hash: second });
    const balance = await devnet.client.getBalance({ address: recipient });

    expect(await reorg(devnet.client, 2, { reinclude: true })).toEqual({
      via: "anvil_reorg",
      transactions: [first, second],
    });
    for (const mined of [minedFirst, minedSecond]) {
      const again = await receiptOf(mined.transactionHash);
      expect(again.blockNumber).toBe(mined.blockNumber);
      expect(again.blockHash).not.toBe(mined.blockHash);
    }
    expect(await devnet.client.getBalance({ address: recipient })).toBe(balance);
  });

  it("falls back to anvil_rollback and re-mining where anvil_reorg is missing", async () => {
    const proxy = await startFaultProxy({
      target: devnet.rpcUrl,
      faults: {
        faults: [
          {
            kind: "rpcError",
            code: -32601,
            message: "Method not found",
            match: { rpcMethod: "anvil_reorg" },
          },
        ],
      },
    });
    try {
      const client = createDevnetClient(proxy.url, devnet.chainId);
      const { recipient } = parties(devnet);
      const before = await devnet.client.getBalance({ address: recipient });
      const gone = await transfer(devnet);
      const mined = await devnet.client.waitForTransactionReceipt({ hash: gone });

      expect(await reorg(client, 1)).toEqual({ via: "anvil_rollback", transactions: [gone] });
      expect(proxy.stats().faulted.rpcError).toBe(1);
      expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(mined.blockNumber);
      await expect(receiptOf(gone)).rejects.toThrow(TransactionReceiptNotFoundError);
      expect(await devnet.client.getBalance({ address: recipient })).toBe(before);

      const kept = await transfer(devnet);
      await devnet.client.waitForTransactionReceipt({ hash: kept });
      expect(await reorg(client, 1, { reinclude: true })).toEqual({
        via: "anvil_rollback",
        transactions: [kept],
      });
      expect((await receiptOf(kept)).status).toBe("success");
      expect(await devnet.client.getBalance({ address: recipient })).toBe(before + 1_000n);
    } finally {
      await proxy.stop();
    }
  });

  it("refuses a reorg deeper than the chain", async () => {
    const head = await devnet.client.getBlockNumber({ cacheTime: 0 });
    await expect(reorg(devnet.client, Number(head) + 1)).rejects.toThrow(RangeError);
    await expect(reorg(devnet.client, 0)).rejects.toThrow(RangeError);
  });
});

describe("chain faults on an interval-mining devnet", () => {
  const blockTime = 1;
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 2, blockTime });
  });
  afterAll(() => devnet?.stop());

  it("pauseMining stops the interval miner; resumeMining restarts it and the pending transaction lands", async () => {
    await pauseMining(devnet.client, blockTime);
    try {
      const height = await devnet.client.getBlockNumber({ cacheTime: 0 });
      const hash = await transfer(devnet);
      // An absence of blocks can only be seen over a window longer than the block time.
      await delay(blockTime * 1000 * 1.5);
      expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(height);
      expect((await devnet.client.getTxpoolStatus()).pending).toBe(1);

      await resumeMining(devnet.client, blockTime);
      const receipt = await devnet.client.waitForTransactionReceipt({ hash });
      expect(receipt.blockNumber).toBeGreaterThan(height);
    } finally {
      await resumeMining(devnet.client, blockTime);
    }
  });
});

describe("chain faults on a pruned devnet, whose blocks the harness's own miner makes", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 2, profile: "flashblocks" });
  });
  afterAll(() => devnet?.stop());

  it("pauseMining pauses the miner at a 0.2 s block time; resumeMining restarts it and the transaction lands", async () => {
    const blockTime = devnet.blockTime;
    await pauseMining(devnet.client, blockTime);
    try {
      const height = await devnet.client.getBlockNumber({ cacheTime: 0 });
      const hash = await transfer(devnet);
      // An absence of blocks can only be seen over a window: five block times.
      await delay(1_000);
      expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBe(height);
      expect((await devnet.client.getTxpoolStatus()).pending).toBe(1);

      await resumeMining(devnet.client, blockTime);
      const receipt = await devnet.client.waitForTransactionReceipt({ hash, pollingInterval: 20 });
      expect(receipt.blockNumber).toBe(height + 1n);
    } finally {
      await resumeMining(devnet.client, blockTime);
    }
  });
});
