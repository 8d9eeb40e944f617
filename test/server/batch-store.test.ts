import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ChannelRecord,
  type ChannelStore,
  FileChannelStore,
  MemoryChannelStore,
} from "../../src/server/index.ts";

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "x402-store-"));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const channelId = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as Hex;

function record(id: Hex, charged = "0"): ChannelRecord {
  return {
    channelId: id,
    channelConfig: {
      payer: "0x0000000000000000000000000000000000000001",
      payerAuthorizer: "0x0000000000000000000000000000000000000001",
      receiver: "0x0000000000000000000000000000000000000002",
      receiverAuthorizer: "0x0000000000000000000000000000000000000003",
      token: "0x0000000000000000000000000000000000000004",
      withdrawDelay: 900,
      salt: `0x${"00".repeat(32)}`,
    },
    chargedCumulativeAmount: charged,
    signedMaxClaimable: charged,
    signature: "0x00",
    balance: "10000",
    totalClaimed: "0",
    withdrawRequestedAt: 0,
    refundNonce: "0",
    lastRequestAt: 0,
  };
}

const add = (store: ChannelStore, id: Hex) =>
  store.update(id, (current) => {
    const base = current ?? record(id);
    return { ...base, chargedCumulativeAmount: String(BigInt(base.chargedCumulativeAmount) + 1n) };
  });

describe.each([
  ["memory", () => new MemoryChannelStore()],
  ["file", () => new FileChannelStore(join(directory, `each-${Math.random().toString(36).slice(2)}`))],
])("%s channel store", (_name, open) => {
  it("applies concurrent updates of one channel one after another", async () => {
    const store = open();
    await Promise.all(Array.from({ length: 50 }, () => add(store, channelId(1))));
    expect((await store.get(channelId(1)))?.chargedCumulativeAmount).toBe("50");
  });

  it("lists, keys ids case-insensitively, and deletes on undefined", async () => {
    const store = open();
    const upper = channelId(0xabc).replace("abc", "ABC") as Hex;
    await store.update(upper, () => record(upper, "7"));
    await store.update(channelId(2), () => record(channelId(2)));
    expect((await store.get(channelId(0xabc)))?.chargedCumulativeAmount).toBe("7");
    expect((await store.list()).map((r) => r.chargedCumulativeAmount).sort()).toEqual(["0", "7"]);
    await store.update(channelId(2), () => undefined);
    expect(await store.get(channelId(2))).toBeUndefined();
    expect(await store.list()).toHaveLength(1);
  });
});

describe("file channel store", () => {
  it("keeps one JSON file per channel, readable by a new store, with no temporary files left", async () => {
    const path = join(directory, "persist");
    const first = new FileChannelStore(path);
    await Promise.all([add(first, channelId(1)), add(first, channelId(1)), add(first, channelId(3))]);
    const files = (await readdir(path)).sort();
    expect(files).toEqual([`${channelId(1)}.json`, `${channelId(3)}.json`]);
    expect(JSON.parse(await readFile(join(path, files[0] ?? ""), "utf8"))).toMatchObject({
      chargedCumulativeAmount: "2",
    });
    const second = new FileChannelStore(path);
    expect((await second.get(channelId(1)))?.chargedCumulativeAmount).toBe("2");
    expect(await second.list()).toHaveLength(2);
  });

  it("drops the reservations and half-written files a previous process left behind", async () => {
    const path = join(directory, "crashed");
    const first = new FileChannelStore(path);
    await first.update(channelId(1), () => ({
      ...record(channelId(1), "4"),
      reservation: { id: "gone", expiresAt: Date.now() + 600_000 },
    }));
    await writeFile(join(path, `${channelId(1)}.json.123.1.tmp`), "{");
    const second = new FileChannelStore(path);
    const reopened = await second.get(channelId(1));
    expect(reopened?.reservation).toBeUndefined();
    expect(reopened?.chargedCumulativeAmount).toBe("4");
    expect(await readdir(path)).toEqual([`${channelId(1)}.json`]);
  });

  it("leaves the record as it was when a change throws", async () => {
    const store = new FileChannelStore(join(directory, "throws"));
    await store.update(channelId(1), () => record(channelId(1), "5"));
    await expect(
      store.update(channelId(1), () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await add(store, channelId(1));
    expect((await store.get(channelId(1)))?.chargedCumulativeAmount).toBe("6");
  });
});
