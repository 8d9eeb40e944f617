import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme as BatchClient } from "@x402/evm/batch-settlement/client";
import { BatchSettlementEvmScheme as BatchServer } from "@x402/evm/batch-settlement/server";
import { paymentMiddleware, setSettlementOverrides } from "@x402/express";
import { wrapFetchWithPayment } from "@x402/fetch";
import express from "express";
import { type Address, erc20Abi, type Hex, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
  BASE_NETWORK,
  type Devnet,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_BATCH_SETTLEMENT_ADDRESS,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { listen } from "../support/official-server.ts";

// The official batch-settlement client, resource server and channel manager (@x402/evm 2.27.0), unmodified,
// settling through OUR facilitator over HTTP: deposits by both collectors, vouchers, claimAndSettle, the
// manager's refund and a client's own refund, every balance read from the chain.

let devnet: Devnet;
let facilitator: Facilitator;
let server: { url: string; stop(): Promise<void> } | undefined;

// Accounts: 0 and 1 payers, 2 the payee, 3 our relayer, 4 the receiver authorizer our facilitator holds.
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 5 });
  facilitator = await startFacilitator({
    schemes: [],
    batchSettlement: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [devnetAccount(devnet, 3).privateKey],
      receiverAuthorizerKey: devnetAccount(devnet, 4).privateKey,
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await facilitator?.stop();
  await devnet?.stop();
});

const usdcBalance = (address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

const channel = async (channelId: Hex) => {
  const [balance, totalClaimed] = await devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName: "channels",
    args: [channelId],
  });
  return { balance, totalClaimed };
};

async function batchEvents(hash: Hex) {
  const receipt = await devnet.client.getTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
  // Sent by our relayer, not by anyone else.
  expect(receipt.from.toLowerCase()).toBe(devnetAccount(devnet, 3).address.toLowerCase());
  return parseEventLogs({
    abi: x402BatchSettlementAbi,
    logs: receipt.logs.filter(
      (log) => log.address.toLowerCase() === X402_BATCH_SETTLEMENT_ADDRESS.toLowerCase(),
    ),
  }).map((e) => ({ eventName: e.eventName, args: e.args }));
}

/** `@x402/express` selling GET /eip3009 for $0.001 and GET /permit2 for 1,000 units paid by Permit2 deposits. */
async function startServer(resourceServer: x402ResourceServer, payTo: Address) {
  const app = express();
  const route = (price: string | { amount: string; asset: Address; extra: Record<string, string> }) => ({
    accepts: { scheme: "batch-settlement", network: BASE_NETWORK, payTo, price },
    description: "batched",
  });
  app.use(
    paymentMiddleware(
      {
        "GET /eip3009": route("$0.001"),
        "GET /permit2": route({
          amount: "1000",
          asset: USDC_ADDRESS,
          extra: { name: USDC_NAME, version: USDC_VERSION, assetTransferMethod: "permit2" },
        }),
      },
      resourceServer,
    ),
  );
  const handler = (request: express.Request, response: express.Response) => {
    const charge = request.query.charge;
    if (typeof charge === "string") setSettlementOverrides(response, { amount: charge });
    response.json({ ok: true });
  };
  app.get("/eip3009", handler);
  app.get("/permit2", handler);
  return listen(app);
}

function payer(privateKey: Hex) {
  const account = privateKeyToAccount(privateKey);
  const scheme = new BatchClient(toClientEvmSigner(account, devnet.client));
  const client = new x402Client().register(BASE_NETWORK, scheme);
  return { address: account.address, scheme, fetch: wrapFetchWithPayment(fetch, client) };
}

function paymentResponse(response: Response): Record<string, unknown> {
  const header = response.headers.get("PAYMENT-RESPONSE");
  expect(header, "PAYMENT-RESPONSE header").toBeTruthy();
  return JSON.parse(Buffer.from(header ?? "", "base64").toString("utf8")) as Record<string, unknown>;
}

describe("the official batch-settlement client, server and channel manager through our facilitator", () => {
  it("deposits, pays by voucher, claims, settles and refunds with balances moving on chain", async () => {
    const payee = devnetAccount(devnet, 2);
    const facilitatorClient = new HTTPFacilitatorClient({ url: facilitator.url });
    const batchServer = new BatchServer(payee.address);
    const resourceServer = new x402ResourceServer(facilitatorClient).register(BASE_NETWORK, batchServer);
    // initialize() reads /supported: the receiver authorizer comes from ours.
    await resourceServer.initialize();
    server = await startServer(resourceServer, payee.address);
    const manager = batchServer.createChannelManager(facilitatorClient, BASE_NETWORK, USDC_ADDRESS);

    const a = payer(devnetAccount(devnet, 0).privateKey);
    const start = {
      a: await usdcBalance(a.address),
      payee: await usdcBalance(payee.address),
      escrow: await usdcBalance(X402_BATCH_SETTLEMENT_ADDRESS),
    };

    // 1. The first request opens A's channel with a deposit of minDeposit (10 × $0.001) by EIP-3009.
    const first = await a.fetch(`${server.url}/eip3009`);
    expect(first.status).toBe(200);
    const deposit = paymentResponse(first);
    expect(deposit).toMatchObject({
      success: true,
      amount: "10000",
      extra: { channelState: { balance: "10000", totalClaimed: "0", refundNonce: "0" } },
    });
    const channelId = (deposit.extra as { channelState: { channelId: Hex } }).channelState.channelId;
    expect(await batchEvents(deposit.transaction as Hex)).toMatchObject([
      { eventName: "ChannelCreated", args: { channelId } },
      { eventName: "Deposited", args: { channelId, amount: 10_000n } },
    ]);
    // The channel names our facilitator's authorizer, which it advertised.
    const config = await devnet.client.readContract({
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "getChannelId",
      args: [
        {
          payer: a.address,
          payerAuthorizer: a.address,
          receiver: payee.address,
          receiverAuthorizer: devnetAccount(devnet, 4).address,
          token: USDC_ADDRESS,
          withdrawDelay: 900,
          salt: `0x${"00".repeat(32)}`,
        },
      ],
    });
    expect(config).toBe(channelId);
    expect(await usdcBalance(a.address)).toBe(start.a - 10_000n);

    // 2. Vouchers: no transaction; cumulative 2,000, then 2,400 with a 400 charge.
    const second = await a.fetch(`${server.url}/eip3009`);
    expect(second.status).toBe(200);
    expect(paymentResponse(second)).toMatchObject({
      success: true,
      transaction: "",
      extra: { channelState: { chargedCumulativeAmount: "2000" } },
    });
    const third = await a.fetch(`${server.url}/eip3009?charge=400`);
    expect(third.status).toBe(200);
    expect(paymentResponse(third)).toMatchObject({
      extra: { channelState: { chargedCumulativeAmount: "2400" } },
    });
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });

    // 3. B funds a channel through the Permit2 collector, after approving Permit2.
    await approvePermit2(devnet.client, [devnetAccount(devnet, 1)], USDC_ADDRESS, devnet.mineOnDemand);
    const b = payer(devnetAccount(devnet, 1).privateKey);
    const startB = await usdcBalance(b.address);
    const viaPermit2 = await b.fetch(`${server.url}/permit2`);
    expect(viaPermit2.status).toBe(200);
    const permit2Deposit = paymentResponse(viaPermit2);
    expect(permit2Deposit).toMatchObject({ success: true, amount: "10000" });
    expect((await batchEvents(permit2Deposit.transaction as Hex)).map((e) => e.eventName)).toEqual([
      "ChannelCreated",
      "Deposited",
    ]);
    const channelB = (permit2Deposit.extra as { channelState: { channelId: Hex } }).channelState.channelId;
    expect(await usdcBalance(b.address)).toBe(startB - 10_000n);
    // A second request from B is a voucher on that channel.
    const againB = await b.fetch(`${server.url}/permit2`);
    expect(paymentResponse(againB)).toMatchObject({
      transaction: "",
      extra: { channelState: { chargedCumulativeAmount: "2000" } },
    });

    // 4. The manager claims both channels' latest vouchers (our authorizer signs the batch) and settles.
    const claimed = await manager.claimAndSettle();
    expect(claimed.claims.reduce((n, c) => n + c.vouchers, 0)).toBe(2);
    expect(claimed.settle?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 2_400n });
    expect(await channel(channelB)).toEqual({ balance: 10_000n, totalClaimed: 2_000n });
    expect(await usdcBalance(payee.address)).toBe(start.payee + 4_400n);
    expect(await batchEvents(claimed.settle?.transaction as Hex)).toMatchObject([
      { eventName: "Settled", args: { amount: 4_400n } },
    ]);
    // Nothing new claimed: the manager sends nothing more, and a settle would have nothing to do.
    const idle = await manager.claimAndSettle();
    expect(idle.claims.reduce((n, c) => n + c.vouchers, 0)).toBe(0);

    // 5. The manager refunds A's unspent balance.
    const refunds = await manager.refund([channelId]);
    expect(refunds).toHaveLength(1);
    expect(await batchEvents(refunds[0]?.transaction as Hex)).toMatchObject([
      { eventName: "Refunded", args: { amount: 7_600n } },
    ]);
    expect(await usdcBalance(a.address)).toBe(start.a - 2_400n);
    expect(await channel(channelId)).toEqual({ balance: 2_400n, totalClaimed: 2_400n });

    // 6. B asks for its own refund through the server (a refund voucher, verified and settled by ours).
    const refundB = await b.scheme.refund(`${server.url}/permit2`);
    expect(refundB).toMatchObject({ success: true, amount: "8000" });
    expect(await usdcBalance(b.address)).toBe(startB - 2_000n);
    expect(await channel(channelB)).toEqual({ balance: 2_000n, totalClaimed: 2_000n });
    // Both channels are spent to what was claimed, and the claims are paid out: the contract holds none of it.
    expect(await usdcBalance(X402_BATCH_SETTLEMENT_ADDRESS)).toBe(start.escrow);
  });
});
