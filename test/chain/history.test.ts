import { readFile } from "node:fs/promises";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Devnet,
  DevnetError,
  DevnetOptionError,
  type History,
  startDevnet,
} from "../../src/chain/index.ts";
import { reorg } from "../../src/faults/index.ts";
import { processRssMb } from "../../src/scenario/index.ts";

const address = "0x000000000000000000000000000000000000dEaD";

/** This process's anvil children, from /proc. */
async function anvilCount(): Promise<number> {
  const children = await readFile(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").catch(
    () => "",
  );
  const names = await Promise.all(
    children
      .split(" ")
      .filter(Boolean)
      .map((pid) => readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")),
  );
  return names.filter((name) => name.trim() === "anvil").length;
}

describe("state history per profile", () => {
  const started: Devnet[] = [];
  afterAll(async () => {
    await Promise.all(started.map((d) => d.stop()));
  });

  it.each([
    ["instant", "full", "computed"],
    ["flashblocks", "pruned", "skipped"],
    ["base", "pruned", "skipped"],
  ] as const)(
    "%s keeps %s history, %s state roots, and says which anvil process runs it",
    async (profile, history, stateRoots) => {
      const devnet = await startDevnet({ accounts: 1, profile });
      started.push(devnet);
      expect(devnet.history).toBe(history);
      expect(devnet.stateRoots).toBe(stateRoots);
      // Whatever runs underneath, the chain is Base's to a client, with USDC where Base has it.
      expect(await devnet.client.getChainId()).toBe(8453);
      expect(await devnet.client.getCode({ address: devnet.contracts.usdc })).toMatch(/^0x[0-9a-f]{100,}/);
      expect(devnet.pid).toBeGreaterThan(0);
      // The pid is anvil's: the report reads its memory from /proc.
      expect(await processRssMb(devnet.pid)).toBeGreaterThan(1);
    },
  );

  it("a chain with skipped state roots is the harness's alone: stopping it stops what it forks", async () => {
    const before = await anvilCount();
    const devnet = await startDevnet({ accounts: 1, profile: "instant", stateRoots: "skipped" });
    expect(devnet.stateRoots).toBe("skipped");
    expect(await anvilCount()).toBe(before + 2);
    await devnet.stop();
    expect(await anvilCount()).toBe(before);
  });

  it("refuses a history it does not know", async () => {
    await expect(startDevnet({ history: "archive" as History })).rejects.toBeInstanceOf(DevnetOptionError);
    await expect(startDevnet({ history: "archive" as History })).rejects.toThrow(
      /history must be one of full, pruned, got archive/,
    );
  });
});

describe("a pruned devnet on 0.2 s blocks", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 2, profile: "flashblocks" });
  });
  afterAll(() => devnet?.stop());

  it("mines on its interval without automine: a transfer is mined by the next block", async () => {
    expect(await devnet.client.getAutomine()).toBe(false);
    const [from] = devnet.accounts;
    if (!from) throw new Error("no account");
    const before = await devnet.client.getBlockNumber({ cacheTime: 0 });
    const hash = await devnet.client.sendTransaction({
      account: privateKeyToAccount(from.privateKey),
      to: address,
      value: 1n,
    });
    const receipt = await devnet.client.waitForTransactionReceipt({ hash, pollingInterval: 20 });
    expect(receipt.status).toBe("success");
    expect(receipt.blockNumber).toBeGreaterThan(before);
  });

  it("reads recent state, but says why it cannot reach further back, and refuses a reorg on its fork", async () => {
    const head = await devnet.client.getBlockNumber({ cacheTime: 0 });
    if (head < 40n) await devnet.client.mine({ blocks: Number(40n - head) });
    const now = await devnet.client.getBlockNumber({ cacheTime: 0 });
    // Two blocks back: what a read at "latest" racing a new block needs.
    await expect(
      devnet.client.getBalance({ address, blockNumber: now - 2n }),
    ).resolves.toBeGreaterThanOrEqual(0n);
    await expect(devnet.client.getBalance({ address, blockNumber: now - 30n })).rejects.toThrow(
      /BlockOutOfRange/,
    );
    // Skipped state roots make it a fork, where anvil would leave the dropped blocks' storage written.
    const onFork = reorg(devnet.client, 2);
    await expect(onFork).rejects.toBeInstanceOf(DevnetError);
    await expect(onFork).rejects.toThrow(/on a forked chain.*\n.*--profile instant/s);
    expect(await devnet.client.getBlockNumber({ cacheTime: 0 })).toBeGreaterThanOrEqual(now);
  });
});

describe("a pruned devnet that computes state roots (instant, --history pruned)", () => {
  let devnet: Devnet;
  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 1, history: "pruned" });
  });
  afterAll(() => devnet?.stop());

  it("reorgs a few blocks, and says why it cannot reorg further back", async () => {
    await devnet.client.mine({ blocks: 40 });
    expect((await reorg(devnet.client, 2)).via).toBe("anvil_reorg");
    const deep = reorg(devnet.client, 30);
    await expect(deep).rejects.toBeInstanceOf(DevnetError);
    await expect(deep).rejects.toThrow(/history: "full"/);
  });
});
