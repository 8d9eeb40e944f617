import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader } from "@x402/core/http";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme as BatchClient } from "@x402/evm/batch-settlement/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { type Address, erc20Abi, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BASE_NETWORK,
  type Devnet,
  startDevnet,
  USDC_ADDRESS,
  X402_BATCH_SETTLEMENT_ADDRESS,
  x402BatchSettlementAbi,
} from "../../src/chain/index.ts";
import {
  type ResourceServer,
  type ResourceServerOptions,
  startResourceServer,
} from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { serveCountingFacilitator } from "../support/counting-facilitator-http.ts";
import { officialBatchFacilitator } from "../support/official-facilitator.ts";

// The channel manager with the receiver-authorizer key held by the paywall: the official facilitator has no
// authorizer of its own here, so every claim and refund it submits carries the paywall's signatures.

let devnet: Devnet;
let facilitator: Awaited<ReturnType<typeof serveCountingFacilitator>>;
const authorizer = privateKeyToAccount(generatePrivateKey());
const running: ResourceServer[] = [];

const accounts = () => ({
  payerA: devnetAccount(devnet, 0),
  payerB: devnetAccount(devnet, 1),
  payerC: devnetAccount(devnet, 2),
  payee: devnetAccount(devnet, 3),
  relayer: devnetAccount(devnet, 4),
});

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 5 });
  facilitator = await serveCountingFacilitator(
    officialBatchFacilitator(devnet.rpcUrl, devnet.chainId, accounts().relayer.privateKey),
  );
}, 60_000);
afterAll(async () => {
  for (const server of running) await server.stop();
  await facilitator?.stop();
  await devnet?.stop();
});

async function startServer(batchSettlement: ResourceServerOptions["batchSettlement"] = {}) {
  const server = await startResourceServer({
    facilitatorUrl: facilitator.url,
    routes: {
      "GET /batch": { price: "$0.001", payTo: accounts().payee.address, scheme: "batch-settlement" },
    },
    batchSettlement: { receiverAuthorizer: authorizer, ...batchSettlement },
  });
  running.push(server);
  return server;
}

async function stop(server: ResourceServer) {
  running.splice(running.indexOf(server), 1);
  await server.stop();
}

const balanceOf = (address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

async function channel(channelId: Hex) {
  const [balance, totalClaimed] = await devnet.client.readContract({
    address: X402_BATCH_SETTLEMENT_ADDRESS,
    abi: x402BatchSettlementAbi,
    functionName: "channels",
    args: [channelId],
  });
  return { balance, totalClaimed };
}

/** Pays `times` requests with the official client; returns the channel id. */
async function pay(url: string, privateKey: Hex, times: number): Promise<Hex> {
  const account = privateKeyToAccount(privateKey);
  const client = new x402Client().register(
    BASE_NETWORK,
    new BatchClient(toClientEvmSigner(account, devnet.client)),
  );
  const paying = wrapFetchWithPayment(fetch, client);
  let channelId: Hex | undefined;
  for (let i = 0; i < times; i++) {
    const response = await paying(url);
    expect(response.status).toBe(200);
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    channelId = (receipt.extra as { channelState: { channelId: Hex } }).channelState.channelId;
  }
  return channelId as Hex;
}

describe("the channel manager with a server-held receiver authorizer", () => {
  it("advertises its own authorizer, refunds with a claim of the charges, and settles them", async () => {
    const server = await startServer();
    const { payerA, payee } = accounts();
    const required = decodePaymentRequiredHeader(
      (await fetch(`${server.url}/batch`)).headers.get("payment-required") ?? "",
    );
    expect(required.accepts[0]?.extra).toMatchObject({ receiverAuthorizer: authorizer.address });

    const start = { payer: await balanceOf(payerA.address), payee: await balanceOf(payee.address) };
    const channelId = await pay(`${server.url}/batch`, payerA.privateKey, 3);
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });

    const calls = facilitator.calls.length;
    const refunds = await server.channels?.refund();
    expect(refunds).toMatchObject([{ channelId, amount: "7000" }]);
    expect(await channel(channelId)).toEqual({ balance: 3_000n, totalClaimed: 3_000n });
    expect(await balanceOf(payerA.address)).toBe(start.payer - 3_000n);
    const settles = await server.channels?.settle();
    expect(settles).toMatchObject([{ amount: "3000" }]);
    expect(await balanceOf(payee.address)).toBe(start.payee + 3_000n);
    expect(facilitator.calls.slice(calls)).toEqual(["settle:refund", "settle:settle"]);
    await stop(server);
  });

  it("refunds idle channels and claims and settles the rest on shutdown when configured", async () => {
    const server = await startServer({ manager: { refundIdleSecs: 0, onClose: { refundIdle: true } } });
    const { payerC, payee } = accounts();
    const start = { payer: await balanceOf(payerC.address), payee: await balanceOf(payee.address) };
    const channelId = await pay(`${server.url}/batch`, payerC.privateKey, 2);
    await stop(server);
    expect(await channel(channelId)).toEqual({ balance: 2_000n, totalClaimed: 2_000n });
    expect(await balanceOf(payerC.address)).toBe(start.payer - 2_000n);
    expect(await balanceOf(payee.address)).toBe(start.payee + 2_000n);
  });

  // Last: it moves the chain's clock past the withdrawal delay, beyond the host clock deposits are signed by.
  it("claims at once when a payer starts a withdrawal, so the withdrawal pays only the unclaimed rest", async () => {
    // Every voucher goes to /verify, which is where the server learns of a withdrawal.
    const server = await startServer({ onchainStateTtlMs: 0 });
    const { payerB, payee } = accounts();
    const start = { payer: await balanceOf(payerB.address), payee: await balanceOf(payee.address) };
    const channelId = await pay(`${server.url}/batch`, payerB.privateKey, 2);
    const config = {
      payer: payerB.address,
      payerAuthorizer: payerB.address,
      receiver: payee.address,
      receiverAuthorizer: authorizer.address,
      token: USDC_ADDRESS,
      withdrawDelay: 900,
      salt: `0x${"00".repeat(32)}`,
    } as const;
    const asPayer = { account: privateKeyToAccount(payerB.privateKey), chain: null } as const;
    const initiated = await devnet.client.writeContract({
      ...asPayer,
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "initiateWithdraw",
      args: [config, 10_000n],
    });
    await devnet.client.waitForTransactionReceipt({ hash: initiated });

    // The next request reveals the withdrawal; its charge is claimed right after it is booked.
    await pay(`${server.url}/batch`, payerB.privateKey, 1);
    // Manager jobs run in order: this settle runs after the urgent claim.
    await server.channels?.settle();
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 3_000n });
    expect(await balanceOf(payee.address)).toBe(start.payee + 3_000n);

    await devnet.client.increaseTime({ seconds: 900 });
    const finalized = await devnet.client.writeContract({
      ...asPayer,
      address: X402_BATCH_SETTLEMENT_ADDRESS,
      abi: x402BatchSettlementAbi,
      functionName: "finalizeWithdraw",
      args: [config],
    });
    await devnet.client.waitForTransactionReceipt({ hash: finalized });
    expect(await balanceOf(payerB.address)).toBe(start.payer - 3_000n);
    await stop(server);
  });

  it("refuses to start without a receiver authorizer from its key or the facilitator", async () => {
    await expect(
      startResourceServer({
        facilitatorUrl: facilitator.url,
        routes: {
          "GET /batch": { price: "$0.001", payTo: accounts().payee.address, scheme: "batch-settlement" },
        },
      }),
    ).rejects.toThrow(/receiverAuthorizer/);
  });

  it("refuses a claim interval that a withdrawal could outrun", async () => {
    await expect(startServer({ manager: { claimIntervalSecs: 900 } })).rejects.toThrow(/claimIntervalSecs/);
  });
});
