/**
 * Scale: a run's settlements are scanned with memory bounded by a page of logs (plus a nonce per
 * settlement), not by the run. By default 10,000 real settlements are made and scanned (a few seconds).
 * With X402_SCALE=1 it is 100,000 (about 40–90 s to make on two busy cores, so not in `npm test`), and the
 * one-shot read the runner used to make is shown to fail on the same blocks, as issue 10 saw:
 *
 *   X402_SCALE=1 npx vitest run test/scenario/chain-scale.test.ts
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Address, parseAbiItem, ResponseBodyTooLargeError } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type PaidRecord, type SettlementScan, scanSettlements } from "../../src/scenario/index.ts";
import { MAX_PER_TRANSACTION, settleMany } from "./chain-settlements.ts";

const SCALE = Boolean(process.env.X402_SCALE);
const COUNT = SCALE ? 100_000 : 10_000;
const MiB = 2 ** 20;
/** What a page of logs may hold live at the default page size, with room; settlements add a nonce each. */
const PAGE_BOUND = 24 * MiB;
const PER_SETTLEMENT_BOUND = 200;

// A heap figure is only comparable after a full collection; the flag makes `gc` reachable in a new context.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe(`scanning ${COUNT.toLocaleString("en")} settlements`, () => {
  let devnet: Devnet;
  let payers: Address[];
  let paid: PaidRecord[];
  let fromBlock: bigint;
  let toBlock: bigint;

  beforeAll(async () => {
    devnet = await startDevnet({ accounts: 10 });
    payers = devnet.accounts.map((a) => a.address);
    fromBlock = (await devnet.client.getBlockNumber({ cacheTime: 0 })) + 1n;
    const started = performance.now();
    paid = await settleMany(devnet, {
      count: COUNT,
      payers: devnet.accounts,
      payees: ["0x00000000000000000000000000000000000b0b01", "0x00000000000000000000000000000000000b0b02"],
    });
    toBlock = await devnet.client.getBlockNumber({ cacheTime: 0 });
    console.log(
      `made ${COUNT} settlements in ${toBlock - fromBlock + 1n} blocks in ${Math.round(performance.now() - started)} ms`,
    );
  }, 600_000);
  afterAll(() => devnet?.stop());

  const expected = (): SettlementScan => ({
    settlements: COUNT,
    duplicates: 0,
    transactions: Math.ceil(COUNT / MAX_PER_TRANSACTION),
    gasUsed: expect.any(BigInt),
    paidWithoutSettlement: 0,
    settlementsWithoutPaid: 0,
  });

  it("reads every settlement, with the heap growing by a page and a nonce per settlement", async () => {
    gc();
    let base = process.memoryUsage().heapUsed;
    let peak = 0;
    let pages = 0;
    const started = performance.now();
    const scan = await scanSettlements(devnet.client, {
      payers,
      paid,
      fromBlock,
      toBlock,
      onPage: () => {
        pages += 1;
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      },
    });
    const ms = Math.round(performance.now() - started);
    expect(scan).toEqual(expected());
    expect(scan.gasUsed).toBeGreaterThan(0n);

    // Again, collecting before each sample: what the scan holds live, garbage aside.
    gc();
    base = process.memoryUsage().heapUsed;
    let live = 0;
    const again = await scanSettlements(devnet.client, {
      payers,
      paid,
      fromBlock,
      toBlock,
      onPage: () => {
        gc();
        live = Math.max(live, process.memoryUsage().heapUsed - base);
      },
    });
    expect(again).toEqual(scan);
    console.log(
      `scanned ${COUNT} settlements in ${ms} ms, ${pages} pages; peak heap growth ${(peak / MiB).toFixed(1)} MiB, live ${(live / MiB).toFixed(1)} MiB`,
    );
    expect(live).toBeLessThan(PAGE_BOUND + PER_SETTLEMENT_BOUND * COUNT);
  }, 300_000);

  it.runIf(SCALE)("the one-shot read of the same blocks is refused as too large", async () => {
    const authorizationUsed = parseAbiItem(
      "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
    );
    await expect(
      devnet.client.getLogs({ address: USDC_ADDRESS, event: authorizationUsed, fromBlock, toBlock }),
    ).rejects.toBeInstanceOf(ResponseBodyTooLargeError);
  });
});
