import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Devnet,
  deployPayoutSplitter,
  payoutSplitterAbi,
  readPayoutSplitter,
  splitPayout,
  startDevnet,
  USDC_ADDRESS,
} from "../../src/chain/index.ts";

let devnet: Devnet;
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 3 });
});
afterAll(() => devnet?.stop());

describe("PayoutSplitter on the devnet", () => {
  it("deploys with its split, and the TypeScript rounding rule equals the contract's quote", async () => {
    const payees = devnet.accounts.map((a) => a.address);
    const shares = [3_333, 3_333, 3_334];
    const splitter = await deployPayoutSplitter(devnet.client, { payees, shares });
    expect(await readPayoutSplitter(devnet.client, splitter)).toEqual({ payees, shares });
    for (const amount of [0n, 1n, 2n, 10_000n, 999_999n, 123_456_789n, 2n ** 200n + 7n]) {
      const quote = await devnet.client.readContract({
        address: splitter,
        abi: payoutSplitterAbi,
        functionName: "quote",
        args: [amount],
      });
      expect(splitPayout(amount, shares)).toEqual([...quote]);
    }
  });

  it("tells a splitter from a plain address or another contract", async () => {
    expect(
      await readPayoutSplitter(devnet.client, devnet.accounts[0]?.address as `0x${string}`),
    ).toBeUndefined();
    expect(await readPayoutSplitter(devnet.client, USDC_ADDRESS)).toBeUndefined();
  });
});
