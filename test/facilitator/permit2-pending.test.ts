import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvePermit2, type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { balanceOf, oursSettleResponse, permit2Requirements, signPermit2 } from "./permit2-support.ts";

let devnet: Devnet;
let facilitator: Facilitator;
const account = (index: number) => devnetAccount(devnet, index);

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 4 });
  facilitator = await startFacilitator({
    schemes: [],
    permit2: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [account(3).privateKey],
      receiptTimeoutMs: 300,
    },
  });
  await approvePermit2(devnet.client, [account(0)], USDC_ADDRESS, devnet.mineOnDemand);
});
afterAll(async () => {
  await facilitator?.stop();
  await devnet?.stop();
});

describe("Permit2 settlement while the chain does not mine", () => {
  it.each([
    ["exact", 500n, undefined],
    ["upto", 600n, "600"],
  ] as const)(
    "%s: answers settlement_pending with the hash, then that transaction's outcome once mined",
    async (kind, amount, reported) => {
      const requirements = permit2Requirements(kind, account(1).address, 1_000n, account(3).address);
      const signed = await signPermit2(account(0).privateKey, requirements);
      const charged = {
        payload: signed.payload,
        requirements: { ...requirements, amount: amount.toString() },
      };
      const toSettle = kind === "upto" ? charged : signed;
      const before = await balanceOf(devnet, account(0).address);

      await devnet.client.setAutomine(false);
      try {
        const pending = await oursSettleResponse(facilitator.url, toSettle);
        expect(pending).toMatchObject({
          success: false,
          errorReason: "settlement_pending",
          transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        });
        const hash = (pending as { transaction: Hex }).transaction;
        // Asked again while unmined: the same transaction, nothing new broadcast.
        expect(await oursSettleResponse(facilitator.url, toSettle)).toMatchObject({
          success: false,
          errorReason: "settlement_pending",
          transaction: hash,
        });
        expect((await devnet.status()).pending).toBe(1);

        await devnet.client.mine({ blocks: 1 });
        expect(await oursSettleResponse(facilitator.url, toSettle)).toMatchObject({
          success: true,
          transaction: hash,
          ...(reported ? { amount: reported } : {}),
        });
        expect(await balanceOf(devnet, account(0).address)).toBe(
          before - (kind === "upto" ? amount : 1_000n),
        );
      } finally {
        await devnet.client.setAutomine(true);
      }
    },
  );

  it("says when a settlement waits for a busy relayer key", async () => {
    const requirements = permit2Requirements("exact", account(1).address, 100n);
    await devnet.client.setAutomine(false);
    try {
      const payments = await Promise.all([1, 2].map(() => signPermit2(account(0).privateKey, requirements)));
      const answers = Promise.all(payments.map((p) => oursSettleResponse(facilitator.url, p)));
      await expect.poll(() => facilitator.settlementLoad()).toEqual({ relayers: 1, busy: 1, queued: 1 });
      await devnet.client.mine({ blocks: 1 });
      for (const answer of await answers) expect(answer).toHaveProperty("transaction");
    } finally {
      await devnet.client.setAutomine(true);
    }
  });
});
