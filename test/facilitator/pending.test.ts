import { erc20Abi, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "../../src/protocol/index.ts";
import { postSettle, signPayment, usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;
let facilitator: Facilitator;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 4 });
  facilitator = await startFacilitator({
    exact: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [devnet.accounts[3]?.privateKey as Hex],
      receiptTimeoutMs: 300,
    },
  });
});
afterAll(async () => {
  await facilitator?.stop();
  await devnet?.stop();
});

const settle = (paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements) =>
  postSettle(facilitator.url, paymentPayload, paymentRequirements);

const balanceOf = (address: Hex) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

describe("settlement while the chain does not mine", () => {
  it("answers settlement_pending with the hash, then resolves the same transaction once a block comes", async () => {
    const [payer, payee] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 500n);
    const payment = signPayment(payer.privateKey, requirements);
    const before = await balanceOf(payer.address);

    await devnet.client.setAutomine(false);
    try {
      const pending = await settle(payment, requirements);
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      expect(pending.transaction).toMatch(/^0x[0-9a-f]{64}$/);

      // Asked again while still unmined: the same transaction, still pending, nothing new broadcast.
      const again = await settle(payment, requirements);
      expect(again).toMatchObject({
        success: false,
        errorReason: "settlement_pending",
        transaction: pending.transaction,
      });
      expect((await devnet.status()).pending).toBe(1);

      await devnet.client.mine({ blocks: 1 });
      const settled = await settle(payment, requirements);
      expect(settled).toMatchObject({ success: true, transaction: pending.transaction });
      expect(await balanceOf(payer.address)).toBe(before - 500n);
    } finally {
      await devnet.client.setAutomine(true);
    }
  });

  it("sends a dropped settlement again, and money moves once", async () => {
    const [, payee, payer] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 700n);
    const payment = signPayment(payer.privateKey, requirements);
    const before = await balanceOf(payer.address);

    await devnet.client.setAutomine(false);
    let pending: SettleResponse;
    try {
      pending = await settle(payment, requirements);
      expect(pending.errorReason).toBe("settlement_pending");
      await devnet.client.dropTransaction({ hash: pending.transaction as Hex });
    } finally {
      await devnet.client.setAutomine(true);
    }
    const settled = await settle(payment, requirements);
    expect(settled.success).toBe(true);
    // Re-sent with the key's re-read nonce, the transaction may well hash the same: what matters is that
    // it was mined this time and moved the money once.
    expect(await devnet.client.getTransactionReceipt({ hash: settled.transaction as Hex })).toMatchObject({
      status: "success",
    });
    expect(await balanceOf(payer.address)).toBe(before - 700n);
    // And once more: the settled outcome, not a third transaction.
    expect(await settle(payment, requirements)).toMatchObject({
      success: true,
      transaction: settled.transaction,
    });
    expect(await balanceOf(payer.address)).toBe(before - 700n);
  });

  it("says when settlements queue for a busy relayer key, in settlementLoad() and on /metrics", async () => {
    const [payer, payee] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 300n);
    expect(facilitator.settlementLoad()).toEqual({ relayers: 1, busy: 0, queued: 0 });

    await devnet.client.setAutomine(false);
    try {
      // The one key takes the first and waits for a block that does not come; the other two wait for it.
      const answers = Promise.all(
        [1, 2, 3].map(() => settle(signPayment(payer.privateKey, requirements), requirements)),
      );
      await vi.waitFor(() =>
        expect(facilitator.settlementLoad()).toEqual({ relayers: 1, busy: 1, queued: 2 }),
      );
      const metrics = await (await fetch(`${facilitator.url}/metrics`)).text();
      expect(metrics).toMatch(/^x402_facilitator_relayers_busy 1$/m);
      expect(metrics).toMatch(/^x402_facilitator_settlements_queued 2$/m);
      await devnet.client.mine({ blocks: 1 });
      for (const answer of await answers) expect(answer.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    } finally {
      await devnet.client.setAutomine(true);
    }
  });
});
