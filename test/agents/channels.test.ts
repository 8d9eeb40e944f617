import { createServer } from "node:http";
import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { BatchSettlementEvmScheme as BatchServer } from "@x402/evm/batch-settlement/server";
import { paymentMiddleware, setSettlementOverrides } from "@x402/express";
import express from "express";
import { type Address, erc20Abi, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../../src/agents/index.ts";
import {
  approvePermit2,
  BASE_NETWORK,
  type Devnet,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_BATCH_SETTLEMENT_ADDRESS,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import { batchError, type ChannelConfig, voucherDigest } from "../../src/protocol/batch-settlement.ts";
import {
  decodePaymentSignatureHeader,
  encodePaymentRequiredHeader,
  signDigest,
} from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialBatchFacilitator } from "../support/official-facilitator.ts";
import { serveOfficialFacilitator } from "../support/official-facilitator-http.ts";
import { listen } from "../support/official-server.ts";

// Our agents paying the official batch-settlement server (@x402/express + BatchSettlementEvmScheme),
// which settles through the official facilitator over HTTP, with every balance read from the devnet.
let devnet: Devnet;
let facilitator: { url: string; stop(): Promise<void> };
let server: { url: string; stop(): Promise<void> };
let payTo: Address;
/** The receiver's side of the official server: claims its channels' latest vouchers on chain. */
let manager: { claim(): Promise<unknown> };
/** What the official server stores of a channel: the last voucher it took, signature included. */
let stored: (channelId: Hex) => Promise<{ signedMaxClaimable: string; signature: string } | undefined>;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 9 });
  const relayer = devnetAccount(devnet, 7);
  const authorizer = devnetAccount(devnet, 8);
  const official = officialBatchFacilitator(
    devnet.rpcUrl,
    devnet.chainId,
    relayer.privateKey,
    authorizer.privateKey,
  );
  facilitator = await serveOfficialFacilitator(official);
  payTo = devnetAccount(devnet, 6).address;
  const facilitatorClient = new HTTPFacilitatorClient({ url: facilitator.url });
  const batchServer = new BatchServer(payTo);
  const resourceServer = new x402ResourceServer(facilitatorClient).register(BASE_NETWORK, batchServer);
  manager = batchServer.createChannelManager(facilitatorClient, BASE_NETWORK, USDC_ADDRESS);
  stored = (channelId) => batchServer.getStorage().get(channelId);
  await resourceServer.initialize();
  const app = express();
  app.use(
    paymentMiddleware(
      {
        "GET /metered": {
          accepts: { scheme: "batch-settlement", network: BASE_NETWORK, payTo, price: "$0.001" },
          description: "batched",
        },
        "GET /permit2": {
          accepts: {
            scheme: "batch-settlement",
            network: BASE_NETWORK,
            payTo,
            price: {
              amount: "1000",
              asset: USDC_ADDRESS,
              extra: { name: USDC_NAME, version: USDC_VERSION, assetTransferMethod: "permit2" },
            },
          },
          description: "batched, deposits by Permit2",
        },
      },
      resourceServer,
    ),
  );
  // `?charge=N` settles N instead of the price, as a metered route does.
  const handler = (request: express.Request, response: express.Response) => {
    const charge = request.query.charge;
    if (typeof charge === "string") setSettlementOverrides(response, { amount: charge });
    response.json({ ok: true });
  };
  app.get("/metered", handler);
  app.get("/permit2", handler);
  server = await listen(app);
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await facilitator?.stop();
  await devnet?.stop();
});

const balanceOf = (address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

const onChain = async (channelId: Hex) => {
  const [balance, totalClaimed] = await devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName: "channels",
    args: [channelId],
  });
  return { balance, totalClaimed };
};

const PATH = "batch-settlement/eip3009";

describe("an agent paying the official batch-settlement server", () => {
  it("deposits once, pays by vouchers, books metered charges, and is refunded deposit − charged", async () => {
    const payer = devnetAccount(devnet, 0);
    const agent = createAgent({ privateKey: payer.privateKey });
    const start = await balanceOf(payer.address);
    const firstBlock = await devnet.client.getBlockNumber();

    const results = [];
    for (let i = 0; i < 6; i++) results.push(await agent.request(`${server.url}/metered`));
    expect(results.map((r) => r.outcome)).toEqual(Array(6).fill("paid"));
    expect(results[0]?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(results.slice(1).every((r) => r.transaction === undefined)).toBe(true);
    // One chain transaction for six payments: the deposit.
    expect(await devnet.client.getBlockNumber()).toBe(firstBlock + 1n);
    expect(await balanceOf(payer.address)).toBe(start - 10_000n);

    // A metered charge below the price is what the books spend; the rest of the voucher stays held.
    expect(await agent.request(`${server.url}/metered?charge=400`)).toMatchObject({ outcome: "paid" });
    expect(agent.payments.map((p) => [p.path, p.amount])).toEqual([
      ...Array(6).fill([PATH, 1_000n]),
      [PATH, 400n],
    ]);
    expect(agent.spent).toBe(6_400n);
    // The deposit counts in full until it is refunded.
    expect(agent.spent + agent.reserved).toBe(10_000n);
    const [channel] = agent.channels;
    expect(channel).toMatchObject({
      deposited: 10_000n,
      balance: 10_000n,
      charged: 6_400n,
      signedMaxClaimable: 7_000n,
      held: 3_600n,
    });
    const channelId = channel?.channelId as Hex;
    expect(await onChain(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });

    const refunds = await agent.refundChannels();
    expect(refunds).toEqual([
      { channelId, outcome: "refunded", refunded: 3_600n, transaction: expect.stringMatching(/^0x/) },
    ]);
    // The chain and the books agree: exactly the charges left the payer.
    expect(await balanceOf(payer.address)).toBe(start - 6_400n);
    expect(await onChain(channelId)).toEqual({ balance: 6_400n, totalClaimed: 6_400n });
    expect(agent.spent).toBe(6_400n);
    expect(agent.reserved).toBe(0n);
    expect(agent.channels[0]).toMatchObject({ refunded: 3_600n, held: 0n, balance: 6_400n });
    // Nothing left to refund.
    expect(await agent.refundChannels()).toEqual([{ channelId, outcome: "empty", refunded: 0n }]);
  });

  it("serialises one agent's concurrent requests on its channel, and signs through a viem account too", async () => {
    const payer = devnetAccount(devnet, 1);
    const agent = createAgent({ account: privateKeyToAccount(payer.privateKey) });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => agent.request(`${server.url}/metered`)),
    );
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill("paid"));
    expect(agent.spent).toBe(5_000n);
    expect(agent.channels[0]).toMatchObject({ charged: 5_000n, deposited: 10_000n });
    // Booked by what the chain shows this time.
    const [refund] = await agent.refundChannels(`${server.url}/metered`, devnet.client);
    expect(refund).toMatchObject({ outcome: "refunded", refunded: 5_000n });
    expect(agent.reserved).toBe(0n);
    expect(agent.spent).toBe(5_000n);
  });
});

describe("a channel funded by Permit2", () => {
  it("deposits through the Permit2 collector once the payer approved Permit2, then pays by vouchers", async () => {
    const payer = devnetAccount(devnet, 0);
    const agent = createAgent({ privateKey: payer.privateKey, policy: { budgetPerRun: 10_000n } });
    // Without the approval the facilitator refuses the deposit; the signed permit stays outstanding.
    const refused = await agent.request(`${server.url}/permit2`);
    expect(refused).toMatchObject({
      outcome: "payment_failed",
      errorCode: batchError("permit2_allowance_required"),
    });
    expect(agent.outstanding).toEqual([
      expect.objectContaining({ path: "batch-settlement/permit2", amount: 10_000n }),
    ]);
    // Which the budget still counts, until it is cancelled on Permit2.
    expect(await agent.request(`${server.url}/permit2`)).toMatchObject({ errorCode: "budget_run" });
    expect((await agent.cancelOutstanding(devnet.client)).released).toHaveLength(1);
    expect(agent.reserved).toBe(0n);

    await approvePermit2(devnet.client, [payer], USDC_ADDRESS, devnet.mineOnDemand);
    const start = await balanceOf(payer.address);
    const first = await agent.request(`${server.url}/permit2`);
    expect(first).toMatchObject({ outcome: "paid", path: "batch-settlement/permit2" });
    const deposit = await devnet.client.getTransaction({ hash: first.transaction as Hex });
    expect(deposit.input.toLowerCase()).toContain(PERMIT2_DEPOSIT_COLLECTOR_ADDRESS.slice(2).toLowerCase());
    expect(await agent.request(`${server.url}/permit2`)).toMatchObject({ outcome: "paid" });
    expect(await balanceOf(payer.address)).toBe(start - 10_000n);
    expect(agent.payments.map((p) => [p.path, p.amount])).toEqual([
      ["batch-settlement/permit2", 1_000n],
      ["batch-settlement/permit2", 1_000n],
    ]);
    const [refund] = await agent.refundChannels(`${server.url}/permit2`, devnet.client);
    expect(refund).toMatchObject({ outcome: "refunded", refunded: 8_000n });
    expect(await balanceOf(payer.address)).toBe(start - 2_000n);
    expect(agent.spent).toBe(2_000n);
    expect(agent.reserved).toBe(0n);
  });
});

describe("channel budgets", () => {
  it("refuses a deposit larger than the run budget before signing anything", async () => {
    const agent = createAgent({
      privateKey: devnetAccount(devnet, 2).privateKey,
      policy: { budgetPerRun: 9_999n },
    });
    expect(await agent.request(`${server.url}/metered`)).toMatchObject({
      outcome: "refused_by_policy",
      errorCode: "budget_run",
    });
    expect(agent.reserved).toBe(0n);
    expect(agent.outstanding).toEqual([]);
    expect(agent.channels[0]).toMatchObject({ deposited: 0n, signedMaxClaimable: 0n });
  });

  it("caps deposits by maxPerPayment × depositMultiplier", async () => {
    const agent = createAgent({
      privateKey: devnetAccount(devnet, 2).privateKey,
      policy: { maxPerPayment: 1_000n },
    });
    const result = await agent.request(`${server.url}/metered`);
    expect(result).toMatchObject({ outcome: "refused_by_policy", errorCode: "max_per_payment" });
    expect(result.error?.message).toMatch(/deposit of 10000 \(at most 5000/);
    expect(agent.reserved).toBe(0n);
  });

  it("counts vouchers within the deposit as nothing new, and a top-up deposit in full", async () => {
    const payer = devnetAccount(devnet, 2);
    const agent = createAgent({ privateKey: payer.privateKey, policy: { budgetPerRun: 10_000n } });
    for (let i = 0; i < 10; i++) {
      expect(await agent.request(`${server.url}/metered`)).toMatchObject({ outcome: "paid" });
    }
    expect(agent.spent).toBe(10_000n);
    expect(agent.reserved).toBe(0n);
    // The channel is exhausted: the next payment needs another deposit, which the budget cannot take.
    expect(await agent.request(`${server.url}/metered`)).toMatchObject({
      outcome: "refused_by_policy",
      errorCode: "budget_run",
    });
    expect(agent.channels[0]).toMatchObject({ deposited: 10_000n, charged: 10_000n });
  });
});

describe("a refund", () => {
  it("gives the day's budget back, so the channel can be funded again", async () => {
    const agent = createAgent({
      privateKey: devnetAccount(devnet, 1).privateKey,
      policy: { budgetPerDay: 12_000n },
    });
    for (let i = 0; i < 10; i++) await agent.request(`${server.url}/metered`);
    // The channel is used up; another deposit would take the day to 20,000.
    expect(await agent.request(`${server.url}/metered`)).toMatchObject({ errorCode: "budget_day" });
    expect(await agent.refundChannels()).toEqual([
      expect.objectContaining({ outcome: "empty", refunded: 0n }),
    ]);

    const partial = createAgent({
      privateKey: devnetAccount(devnet, 1).privateKey,
      policy: { budgetPerDay: 12_000n },
    });
    for (let i = 0; i < 2; i++) await partial.request(`${server.url}/metered`);
    expect(await partial.refundChannels(undefined, devnet.client)).toEqual([
      expect.objectContaining({ outcome: "refunded", refunded: 8_000n }),
    ]);
    // The day now counts the 2,000 charged: a new deposit of 10,000 fits, on the same channel.
    expect(await partial.request(`${server.url}/metered`)).toMatchObject({
      outcome: "paid",
      transaction: expect.stringMatching(/^0x/),
    });
    expect(partial.channels).toHaveLength(1);
    expect(partial.channels[0]).toMatchObject({ deposited: 20_000n, refunded: 8_000n, charged: 3_000n });
    expect(partial.spent + partial.reserved).toBe(12_000n);
  });
});

describe("a corrective 402", () => {
  it("is adopted when the agent's own voucher backs it, and the payment retried once", async () => {
    const payer = devnetAccount(devnet, 3);
    const channelSalt = generatePrivateKey();
    const before = createAgent({ privateKey: payer.privateKey, channelSalt });
    for (let i = 0; i < 3; i++) await before.request(`${server.url}/metered`);
    expect(before.spent).toBe(3_000n);
    const channelId = before.channels[0]?.channelId as Hex;

    // The same payer and channel with its state lost: it offers a fresh deposit, the server corrects it.
    const after = createAgent({ privateKey: payer.privateKey, channelSalt });
    const firstBlock = await devnet.client.getBlockNumber();
    const result = await after.request(`${server.url}/metered`);
    expect(result).toMatchObject({ outcome: "paid", status: 200 });
    expect(result.transaction).toBeUndefined();
    expect(await devnet.client.getBlockNumber()).toBe(firstBlock);
    expect(after.channels[0]).toMatchObject({
      channelId,
      balance: 10_000n,
      charged: 4_000n,
      signedMaxClaimable: 4_000n,
    });
    // These books start at the adopted level: only the new charge is theirs.
    expect(after.payments.map((p) => p.amount)).toEqual([1_000n]);
    // The deposit it offered was refused, yet signed: outstanding until the chain proves it dead.
    expect(after.outstanding).toEqual([expect.objectContaining({ path: PATH, amount: 10_000n })]);
    const cancelled = await after.cancelOutstanding(devnet.client);
    expect(cancelled.released).toHaveLength(1);
    expect(after.reserved).toBe(0n);

    expect(await after.refundChannels()).toEqual([
      expect.objectContaining({ channelId, outcome: "refunded", refunded: 6_000n }),
    ]);
    expect(await onChain(channelId)).toEqual({ balance: 4_000n, totalClaimed: 4_000n });
  });

  it("from a hostile server is not adopted when the voucher state is not the agent's own", async () => {
    const agentKey = devnetAccount(devnet, 4).privateKey;
    const stranger = generatePrivateKey();
    const authorizer = devnetAccount(devnet, 8).address;
    let forgeries = 0;
    const paid: string[] = [];
    const forge = (signer: Hex, charged: bigint, signedMax: bigint) => ({ signer, charged, signedMax });
    // A stranger's signature; then the agent's own signature under a charge above what it allows.
    const plans = [forge(stranger, 500_000n, 600_000n), forge(agentKey, 700_000n, 600_000n)];
    const hostile = await listen(
      createServer((request, response) => {
        const accept = {
          scheme: "batch-settlement",
          network: BASE_NETWORK,
          amount: "1000",
          asset: USDC_ADDRESS,
          payTo,
          maxTimeoutSeconds: 300,
          extra: {
            name: USDC_NAME,
            version: USDC_VERSION,
            receiverAuthorizer: authorizer,
            withdrawDelay: 900,
            minDeposit: "10000",
          },
        };
        const resource = { url: `http://${request.headers.host}/paid`, description: "", mimeType: "" };
        const signature = request.headers["payment-signature"];
        let error: string | undefined;
        if (typeof signature === "string") {
          paid.push(signature);
          const { payload } = decodePaymentSignatureHeader(signature);
          const channelId = (payload as { voucher: { channelId: Hex } }).voucher.channelId;
          const plan = plans[forgeries++ % plans.length];
          if (!plan) throw new Error("no plan");
          error = batchError("cumulative_amount_mismatch");
          Object.assign(accept.extra, {
            channelState: {
              channelId,
              balance: "1000000",
              totalClaimed: "0",
              withdrawRequestedAt: 0,
              refundNonce: "0",
              chargedCumulativeAmount: `${plan.charged}`,
            },
            voucherState: {
              signedMaxClaimable: `${plan.signedMax}`,
              signature: signDigest(plan.signer, voucherDigest(devnet.chainId, channelId, plan.signedMax)),
            },
          });
        }
        response
          .writeHead(402, {
            "payment-required": encodePaymentRequiredHeader({
              x402Version: 2,
              ...(error ? { error } : {}),
              resource,
              accepts: [accept],
            }),
          })
          .end("{}");
      }),
    );
    try {
      const agent = createAgent({ privateKey: agentKey });
      for (let i = 0; i < plans.length; i++) {
        const result = await agent.request(`${hostile.url}/paid`);
        expect(result).toMatchObject({
          outcome: "payment_failed",
          errorCode: batchError("cumulative_amount_mismatch"),
        });
        // Not adopted, so not retried: one paid request each.
        expect(paid).toHaveLength(i + 1);
        expect(agent.channels[0]).toMatchObject({ balance: 0n, charged: 0n, signedMaxClaimable: 0n });
        expect(agent.spent).toBe(0n);
      }
      // Every deposit it signed stays in the budgets: the server could still cash them.
      expect(agent.outstanding).toHaveLength(2);
      expect(agent.reserved).toBe(20_000n);
      // Both deposits were offered on a fresh channel, from zero: the forged state never entered the books.
      const vouchers = paid.map(
        (h) =>
          (
            decodePaymentSignatureHeader(h).payload as {
              type: string;
              voucher: { maxClaimableAmount: string };
            }
          ).voucher.maxClaimableAmount,
      );
      expect(vouchers).toEqual(["1000", "1000"]);
    } finally {
      await hostile.stop();
    }
  });
});

/** A server that serves every paid request, with a receipt of its own making. */
async function lyingServer(receipt: (payload: Record<string, unknown>) => Record<string, unknown>) {
  const authorizer = devnetAccount(devnet, 8).address;
  return listen(
    createServer((request, response) => {
      const signature = request.headers["payment-signature"];
      if (typeof signature === "string") {
        const payload = decodePaymentSignatureHeader(signature).payload;
        const settled = {
          success: true,
          payer: "",
          network: BASE_NETWORK,
          transaction: "",
          ...receipt(payload),
        };
        response
          .writeHead(200, {
            "content-type": "application/json",
            "payment-response": Buffer.from(JSON.stringify(settled)).toString("base64"),
          })
          .end("{}");
        return;
      }
      const accept = {
        scheme: "batch-settlement",
        network: BASE_NETWORK,
        amount: "1000",
        asset: USDC_ADDRESS,
        payTo,
        maxTimeoutSeconds: 300,
        extra: { name: USDC_NAME, version: USDC_VERSION, receiverAuthorizer: authorizer, withdrawDelay: 900 },
      };
      const resource = { url: `http://${request.headers.host}/paid`, description: "", mimeType: "" };
      response
        .writeHead(402, {
          "payment-required": encodePaymentRequiredHeader({ x402Version: 2, resource, accepts: [accept] }),
        })
        .end("{}");
    }),
  );
}

describe("a lying server's receipts", () => {
  it("never book a charge above what the voucher added, nor a refund the chain does not show", async () => {
    const liar = await lyingServer((payload) =>
      payload.type === "refund"
        ? { amount: "999999", transaction: `0x${"ab".repeat(32)}` }
        : { extra: { chargedAmount: "5000" } },
    );
    try {
      const agent = createAgent({ privateKey: devnetAccount(devnet, 4).privateKey });
      for (let i = 0; i < 2; i++) {
        expect(await agent.request(`${liar.url}/paid`)).toMatchObject({ outcome: "paid" });
      }
      // Charged 1,000 each, not 5,000; the 5,000 deposit (5 × the price) stays counted in full.
      expect(agent.payments.map((p) => p.amount)).toEqual([1_000n, 1_000n]);
      expect(agent.channels[0]).toMatchObject({ deposited: 5_000n, charged: 2_000n, held: 3_000n });
      expect(agent.spent + agent.reserved).toBe(5_000n);

      // Its deposit never reached the chain, so no refund can have: nothing is freed.
      const [checked] = await agent.refundChannels(undefined, devnet.client);
      expect(checked).toMatchObject({ outcome: "failed", refunded: 0n, errorCode: "refund_not_on_chain" });
      expect(agent.reserved).toBe(3_000n);
      // Taken on the server's word, the refund is capped at what the channel holds beyond its charges.
      const [trusted] = await agent.refundChannels();
      expect(trusted).toMatchObject({ outcome: "refunded", refunded: 3_000n });
      expect(agent.reserved).toBe(0n);
    } finally {
      await liar.stop();
    }
  });
});

// Last: it moves the devnet's clock past the withdrawal delay, beyond the host time deposits are signed by.
describe("a timed withdrawal", () => {
  it("returns what the receiver did not claim, and books a claim beyond the reported charges", async () => {
    const payer = devnetAccount(devnet, 5);
    const agent = createAgent({ privateKey: payer.privateKey });
    const start = await balanceOf(payer.address);
    for (let i = 0; i < 2; i++) await agent.request(`${server.url}/metered`);
    // Charged 400 against a voucher for 1,000 more: the receiver holds a voucher up to 3,000.
    await agent.request(`${server.url}/metered?charge=400`);
    const [channel] = agent.channels;
    const channelId = channel?.channelId as Hex;
    expect(channel).toMatchObject({ charged: 2_400n, held: 7_600n });

    const [initiated] = await agent.initiateWithdraw(devnet.client);
    expect(initiated).toMatchObject({ channelId, amount: 10_000n });
    // Not yet: the delay has not passed, and nothing changed in the books.
    expect(await agent.finalizeWithdraw(devnet.client)).toEqual([]);
    expect(agent.reserved).toBe(7_600n);

    // Within the delay the server claims what it charged, as servers must; then the receiver itself
    // claims its last voucher in full, 600 beyond what it reported charging.
    await manager.claim();
    expect(await onChain(channelId)).toEqual({ balance: 10_000n, totalClaimed: 2_400n });
    const last = await stored(channelId);
    expect(last?.signedMaxClaimable).toBe("3000");
    const claim = await devnet.client.writeContract({
      account: privateKeyToAccount(devnetAccount(devnet, 6).privateKey),
      chain: null,
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "claim",
      args: [
        [
          {
            voucher: { channel: channel?.config as ChannelConfig, maxClaimableAmount: 3_000n },
            signature: last?.signature as Hex,
            totalClaimed: 3_000n,
          },
        ],
      ],
    });
    await devnet.client.waitForTransactionReceipt({ hash: claim });

    await devnet.client.increaseTime({ seconds: 900 });
    // A block at the new time, as a live chain would have made by then.
    await devnet.client.mine({ blocks: 1 });
    const [finalized] = await agent.finalizeWithdraw(devnet.client);
    expect(finalized).toMatchObject({ channelId, amount: 7_000n });
    expect(await balanceOf(payer.address)).toBe(start - 3_000n);
    // The books follow the chain: 3,000 gone, the last 600 of it found on chain only.
    expect(agent.spent).toBe(3_000n);
    expect(agent.reserved).toBe(0n);
    expect(agent.payments.at(-1)).toMatchObject({ amount: 600n, confirmedBy: "chain" });
    expect(agent.channels[0]).toMatchObject({ balance: 3_000n, charged: 3_000n, refunded: 7_000n, held: 0n });
  });
});
