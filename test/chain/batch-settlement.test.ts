import { x402Client } from "@x402/core/client";
import { type FacilitatorClient, x402ResourceServer } from "@x402/core/server";
import type { SupportedResponse } from "@x402/core/types";
import { BATCH_SETTLEMENT_DOMAIN, toClientEvmSigner, voucherTypes } from "@x402/evm";
import { BatchSettlementEvmScheme as BatchClient } from "@x402/evm/batch-settlement/client";
import { BatchSettlementEvmScheme as BatchServer } from "@x402/evm/batch-settlement/server";
import { paymentMiddleware, setSettlementOverrides } from "@x402/express";
import { wrapFetchWithPayment } from "@x402/fetch";
import express from "express";
import {
  type Address,
  erc20Abi,
  type Hex,
  hashDomain,
  hashTypedData,
  keccak256,
  parseEventLogs,
  toHex,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
  BASE_NETWORK,
  type Devnet,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  startDevnet,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
  X402_BATCH_SETTLEMENT_ADDRESS,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialBatchFacilitator } from "../support/official-facilitator.ts";
import { listen } from "../support/official-server.ts";

// The official batch-settlement client, server and facilitator (@x402/evm 2.27.0), unmodified, against our
// contracts on a fresh devnet: x402-schemes §7's expected happy path, with every balance read from the chain.

let devnet: Devnet;
let server: { url: string; stop(): Promise<void> } | undefined;
beforeAll(async () => {
  devnet = await startDevnet({ accounts: 5 });
});
afterAll(async () => {
  await server?.stop();
  await devnet?.stop();
});

const DOMAIN_TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
} as const;

/** The SDK's batch domain for a chain (its own helper is internal to the package). */
const getBatchSettlementEip712Domain = (chainId: number) => ({
  ...BATCH_SETTLEMENT_DOMAIN,
  chainId,
  verifyingContract: X402_BATCH_SETTLEMENT_ADDRESS,
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

/** The batch contract's events in a transaction, decoded with our ABI (the SDK's knows only `Settled`). */
async function batchEvents(hash: Hex) {
  const receipt = await devnet.client.getTransactionReceipt({ hash });
  expect(receipt.status).toBe("success");
  return parseEventLogs({
    abi: x402BatchSettlementAbi,
    logs: receipt.logs.filter(
      (log) => log.address.toLowerCase() === X402_BATCH_SETTLEMENT_ADDRESS.toLowerCase(),
    ),
  });
}

/**
 * `@x402/express` selling GET /eip3009 for $0.001 (deposits by EIP-3009) and GET /permit2 for 1,000 units of
 * USDC with deposits by Permit2; `?charge=N` settles N instead of the price, as metered routes do.
 */
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

/** A payer as the official fetch wrapper drives it, with a voucher key of its own and reads through the devnet. */
function payer(privateKey: Hex) {
  const account = privateKeyToAccount(privateKey);
  const scheme = new BatchClient(toClientEvmSigner(account, devnet.client));
  const client = new x402Client().register(BASE_NETWORK, scheme);
  return { address: account.address, scheme, fetch: wrapFetchWithPayment(fetch, client) };
}

/** The PAYMENT-RESPONSE a paid request carried, decoded. */
function paymentResponse(response: Response): Record<string, unknown> {
  const header = response.headers.get("PAYMENT-RESPONSE");
  expect(header, "PAYMENT-RESPONSE header").toBeTruthy();
  return JSON.parse(Buffer.from(header ?? "", "base64").toString("utf8")) as Record<string, unknown>;
}

describe("batch-settlement on the devnet with the official client, server and facilitator", () => {
  it("finds the batch contract at its canonical address under Base's EIP-712 domain", async () => {
    const expectedSeparator = "0xd8d982716899b0e20cf2c1e706a37b8a892c83fdd4ac9b540cfeec11f9c73a39";
    const domain = getBatchSettlementEip712Domain(devnet.chainId);
    expect(hashDomain({ domain: { ...domain, chainId: BigInt(domain.chainId) }, types: DOMAIN_TYPES })).toBe(
      expectedSeparator,
    );
    const [, name, version, chainId, verifyingContract] = await devnet.client.readContract({
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "eip712Domain",
    });
    expect({ name, version, chainId, verifyingContract }).toEqual({
      ...BATCH_SETTLEMENT_DOMAIN,
      chainId: 8453n,
      verifyingContract: X402_BATCH_SETTLEMENT_ADDRESS,
    });
    const channelId = keccak256(toHex("some channel"));
    expect(
      await devnet.client.readContract({
        address: X402_BATCH_SETTLEMENT_ADDRESS,
        abi: x402BatchSettlementAbi,
        functionName: "getVoucherDigest",
        args: [channelId, 1_234n],
      }),
    ).toBe(
      hashTypedData({
        domain: getBatchSettlementEip712Domain(devnet.chainId),
        types: voucherTypes,
        primaryType: "Voucher",
        message: { channelId, maxClaimableAmount: 1_234n },
      }),
    );
  });

  it("deposits, pays by voucher, claims, settles and refunds with balances moving on chain", async () => {
    const [payerA, payerB, payee, relayer, authorizer] = [0, 1, 2, 3, 4].map((i) => devnetAccount(devnet, i));
    if (!payerA || !payerB || !payee || !relayer || !authorizer) throw new Error("accounts");

    const facilitator = officialBatchFacilitator(
      devnet.rpcUrl,
      devnet.chainId,
      relayer.privateKey,
      authorizer.privateKey,
    );
    // In process, as §7 allows: x402Facilitator answers getSupported synchronously, the client interface async.
    const facilitatorClient: FacilitatorClient = {
      verify: (payload, requirements) => facilitator.verify(payload, requirements),
      settle: (payload, requirements) => facilitator.settle(payload, requirements),
      // Its kinds' networks come back as plain strings; they are the CAIP-2 ids it was registered under.
      getSupported: async () => facilitator.getSupported() as SupportedResponse,
    };
    const batchServer = new BatchServer(payee.address);
    const resourceServer = new x402ResourceServer(facilitatorClient).register(BASE_NETWORK, batchServer);
    await resourceServer.initialize();
    server = await startServer(resourceServer, payee.address);
    const manager = batchServer.createChannelManager(facilitatorClient, BASE_NETWORK, USDC_ADDRESS);

    const a = payer(payerA.privateKey);
    const start = {
      a: await usdcBalance(a.address),
      payee: await usdcBalance(payee.address),
      escrow: await usdcBalance(X402_BATCH_SETTLEMENT_ADDRESS),
    };

    // 1. The first request opens the channel: a deposit of minDeposit (10 × $0.001) by EIP-3009.
    const first = await a.fetch(`${server.url}/eip3009`);
    expect(first.status).toBe(200);
    const deposit = paymentResponse(first);
    expect(deposit).toMatchObject({ success: true, amount: "10000" });
    const depositEvents = await batchEvents(deposit.transaction as Hex);
    expect(depositEvents.map((e) => e.eventName)).toEqual(["ChannelCreated", "Deposited"]);
    const depositTx = await devnet.client.getTransaction({ hash: deposit.transaction as Hex });
    expect(depositTx.to?.toLowerCase()).toBe(X402_BATCH_SETTLEMENT_ADDRESS.toLowerCase());
    // The SDK derives the channel id off chain; the contract must arrive at the same one.
    const channelId = (deposit.extra as { channelState: { channelId: Hex } }).channelState.channelId;
    expect(depositEvents[0]).toMatchObject({ args: { channelId } });
    expect(depositTx.input.toLowerCase()).toContain(ERC3009_DEPOSIT_COLLECTOR_ADDRESS.slice(2).toLowerCase());
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });
    expect(await usdcBalance(a.address)).toBe(start.a - 10_000n);

    // 2. Later requests are vouchers: no transaction, cumulative 2,000, then 2,400 with a 400 charge.
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
      transaction: "",
      extra: { chargedAmount: "400", channelState: { chargedCumulativeAmount: "2400" } },
    });
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });

    // 3. Another payer's channel, funded through the Permit2 collector after approving Permit2.
    const b = payer(payerB.privateKey);
    await approvePermit2(devnet.client, [payerB], USDC_ADDRESS, devnet.mineOnDemand);
    const startB = await usdcBalance(b.address);
    const viaPermit2 = await b.fetch(`${server.url}/permit2`);
    expect(viaPermit2.status).toBe(200);
    const permit2Deposit = paymentResponse(viaPermit2);
    expect(permit2Deposit).toMatchObject({ success: true, amount: "10000" });
    const permit2Events = await batchEvents(permit2Deposit.transaction as Hex);
    expect(permit2Events.map((e) => e.eventName)).toEqual(["ChannelCreated", "Deposited"]);
    const permit2Tx = await devnet.client.getTransaction({ hash: permit2Deposit.transaction as Hex });
    expect(permit2Tx.input.toLowerCase()).toContain(PERMIT2_DEPOSIT_COLLECTOR_ADDRESS.slice(2).toLowerCase());
    expect(await usdcBalance(b.address)).toBe(startB - 10_000n);

    // 4. The receiver side claims every channel's latest voucher and sweeps the claimed total to payTo.
    const claimed = await manager.claimAndSettle();
    expect(claimed.claims.reduce((n, c) => n + c.vouchers, 0)).toBe(2);
    expect(claimed.settle?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 2_400n });
    // payTo gets 2,400 from A's channel and 1,000 from B's.
    expect(await usdcBalance(payee.address)).toBe(start.payee + 3_400n);
    const settledEvents = await batchEvents(claimed.settle?.transaction as Hex);
    expect(settledEvents).toMatchObject([{ eventName: "Settled", args: { amount: 3_400n } }]);

    // 5. The manager refunds what each channel holds beyond its charges.
    const refunds = await manager.refund([channelId]);
    expect(refunds).toHaveLength(1);
    expect(await usdcBalance(a.address)).toBe(start.a - 2_400n);
    expect(await channel(channelId)).toEqual({ balance: 2_400n, totalClaimed: 2_400n });
    const refundEvents = await batchEvents(refunds[0]?.transaction as Hex);
    expect(refundEvents).toMatchObject([{ eventName: "Refunded", args: { amount: 7_600n } }]);
    expect(
      await devnet.client.readContract({
        address: X402_BATCH_SETTLEMENT_ADDRESS,
        abi: x402BatchSettlementAbi,
        functionName: "refundNonce",
        args: [channelId],
      }),
    ).toBe(1n);
    // Everything the contract still holds is B's unspent deposit.
    expect(await usdcBalance(X402_BATCH_SETTLEMENT_ADDRESS)).toBe(start.escrow + 9_000n);

    // 6. B leaves without the receiver: a timed withdrawal, which the SDK never makes, over the channel the
    // client configured (its own key signs vouchers; the facilitator's authorizer; the default delay and salt).
    const configB = {
      payer: b.address,
      payerAuthorizer: b.address,
      receiver: payee.address,
      receiverAuthorizer: privateKeyToAccount(authorizer.privateKey).address,
      token: USDC_ADDRESS,
      withdrawDelay: 900,
      salt: `0x${"00".repeat(32)}`,
    } as const;
    const channelB = (permit2Deposit.extra as { channelState: { channelId: Hex } }).channelState.channelId;
    expect(
      await devnet.client.readContract({
        address: X402_BATCH_SETTLEMENT_ADDRESS,
        abi: x402BatchSettlementAbi,
        functionName: "getChannelId",
        args: [configB],
      }),
    ).toBe(channelB);
    const asB = { account: privateKeyToAccount(payerB.privateKey), chain: null } as const;
    const initiated = await devnet.client.writeContract({
      ...asB,
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "initiateWithdraw",
      args: [configB, 9_000n],
    });
    expect((await batchEvents(initiated)).map((e) => e.eventName)).toEqual(["WithdrawInitiated"]);
    const finalize = {
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "finalizeWithdraw",
      args: [configB],
    } as const;
    await expect(devnet.client.simulateContract({ ...finalize, account: asB.account })).rejects.toThrow(
      /WithdrawDelayNotElapsed/,
    );
    await devnet.client.increaseTime({ seconds: 900 });
    const finalized = await devnet.client.writeContract({ ...finalize, ...asB });
    expect(await batchEvents(finalized)).toMatchObject([
      { eventName: "WithdrawFinalized", args: { amount: 9_000n } },
    ]);
    expect(await usdcBalance(b.address)).toBe(startB - 1_000n);
    expect(await channel(channelB)).toEqual({ balance: 1_000n, totalClaimed: 1_000n });
  });
});
