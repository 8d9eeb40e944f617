import { type Hash, type Hex, parseEther } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type Devnet, startDevnet } from "../../src/chain/index.ts";
import { type ReorgEvent, ReorgGuard } from "../../src/facilitator/exact-evm/reorg-guard.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import { reorg } from "../../src/faults/index.ts";
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "../../src/protocol/index.ts";
import { usdcBalances } from "../server/harness.ts";
import { signPayment, usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 6 });
});
afterAll(async () => {
  await devnet?.stop();
});

const account = (i: number) => {
  const found = devnet.accounts[i];
  if (!found) throw new Error(`no account ${i}`);
  return found;
};

/** Resolves with the first event the predicate accepts. */
function nextEvent(
  events: ReorgEvent[],
  listeners: ((e: ReorgEvent) => void)[],
  hash: Hash,
): Promise<ReorgEvent> {
  const seen = events.find((e) => e.hash === hash);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    listeners.push((e) => {
      if (e.hash === hash) resolve(e);
    });
  });
}

describe("a reorg that drops a settlement", () => {
  let facilitator: Facilitator;
  const events: ReorgEvent[] = [];
  const listeners: ((e: ReorgEvent) => void)[] = [];

  beforeAll(async () => {
    facilitator = await startFacilitator({
      exact: {
        rpcUrl: devnet.rpcUrl,
        chainId: devnet.chainId,
        // One relayer: the next settlement after the reorg takes the nonce right above the dropped one.
        relayerKeys: [account(5).privateKey],
        onReorg: (event) => {
          events.push(event);
          for (const listener of listeners) listener(event);
        },
      },
    });
  });
  afterAll(async () => {
    await facilitator?.stop();
  });

  const settle = async (payment: PaymentPayload, requirements: PaymentRequirements) => {
    const response = await fetch(`${facilitator.url}/settle`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x402Version: 2, paymentPayload: payment, paymentRequirements: requirements }),
    });
    return (await response.json()) as SettleResponse;
  };

  it("is put back with the same hash, the payer charged once, and the relayer's next settlement not held up", async () => {
    const [payer, other, payee] = [account(0), account(1), account(2)];
    const requirements = usdcRequirements(payee.address, 1_000n);
    const parties = [payer.address, other.address, payee.address] as const;
    const before = await usdcBalances(devnet, parties);

    const payment = signPayment(payer.privateKey, requirements);
    const first = await settle(payment, requirements);
    expect(first.success).toBe(true);
    const dropped = await reorg(devnet.client, 1);
    expect(dropped.transactions).toContain(first.transaction);
    // Straight after the reorg, before anything was put back: this one takes the relayer's next nonce.
    const second = await settle(signPayment(other.privateKey, requirements), requirements);
    expect(second).toMatchObject({ success: true });

    expect(await nextEvent(events, listeners, first.transaction as Hash)).toMatchObject({
      outcome: "resubmitted",
    });
    const receipt = await devnet.client.getTransactionReceipt({ hash: first.transaction as Hash });
    expect(receipt.status).toBe("success");
    expect(await usdcBalances(devnet, parties)).toEqual([
      before[0] - 1_000n,
      before[1] - 1_000n,
      before[2] + 2_000n,
    ]);
    // What the facilitator remembers for that authorization is still true on chain.
    expect(await settle(payment, requirements)).toMatchObject({
      success: true,
      transaction: first.transaction,
      extra: { duplicate: true },
    });
  });
});

describe("ReorgGuard", () => {
  /** A plain signed ETH transfer from `from`, mined, with its bytes. */
  async function mined(fromKey: Hex, nonce?: number) {
    const sender = privateKeyToAccount(fromKey);
    const fees = await devnet.client.estimateFeesPerGas();
    const request = {
      chainId: devnet.chainId,
      type: "eip1559",
      to: account(4).address,
      value: parseEther("0.001"),
      gas: 21_000n,
      nonce:
        nonce ?? (await devnet.client.getTransactionCount({ address: sender.address, blockTag: "pending" })),
      ...fees,
    } as const;
    const serialized = await sender.signTransaction(request);
    const hash = await devnet.client.sendRawTransaction({ serializedTransaction: serialized });
    return {
      serialized,
      nonce: request.nonce,
      receipt: await devnet.client.waitForTransactionReceipt({ hash }),
    };
  }

  it("reports as lost a dropped transaction whose nonce another one took first", async () => {
    const events: ReorgEvent[] = [];
    // A pass only when asked, so the reorg and the replacement happen before it.
    const guard = new ReorgGuard(devnet.client, { intervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    onTestFinished(() => guard.close());
    const key = account(3).privateKey;
    const { serialized, nonce, receipt } = await mined(key);
    guard.watch(serialized, receipt);
    await reorg(devnet.client, 1);
    await mined(key, nonce);
    await guard.check();
    expect(events).toEqual([
      { hash: receipt.transactionHash, outcome: "lost", reason: expect.stringMatching(/nonce/i) },
    ]);
  });

  it("watches only the settlements of the last `depth` blocks, however many were mined", async () => {
    const guard = new ReorgGuard(devnet.client, { depth: 4, intervalMs: 3_600_000 });
    onTestFinished(() => guard.close());
    // One block each: the chain mines every transaction as it comes.
    for (let i = 0; i < 10; i++) {
      const { serialized, receipt } = await mined(account(3).privateKey);
      guard.watch(serialized, receipt);
    }
    expect(guard.watching).toBe(10);
    await guard.check();
    expect(guard.watching).toBe(4);
  });

  it("leaves alone what a reorg re-included", async () => {
    const events: ReorgEvent[] = [];
    const guard = new ReorgGuard(devnet.client, { intervalMs: 3_600_000, onEvent: (e) => events.push(e) });
    onTestFinished(() => guard.close());
    const { serialized, receipt } = await mined(account(3).privateKey);
    guard.watch(serialized, receipt);
    await guard.check();
    await reorg(devnet.client, 1, { reinclude: true });
    await guard.check();
    await guard.check();
    expect(events).toEqual([]);
    expect((await devnet.client.getTransactionReceipt({ hash: receipt.transactionHash })).status).toBe(
      "success",
    );
  });
});
