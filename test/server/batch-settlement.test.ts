import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, encodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentRequired } from "@x402/core/types";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme as BatchClient } from "@x402/evm/batch-settlement/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import type { FastifyRequest } from "fastify";
import { type Address, erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  approvePermit2,
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
  setSettlementOverrides,
  startResourceServer,
} from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { serveCountingFacilitator } from "../support/counting-facilitator-http.ts";
import { officialBatchFacilitator } from "../support/official-facilitator.ts";

// The paywall's batch-settlement routes paid by the official client (@x402/evm 2.27.0) through the official
// facilitator over HTTP, with every balance read from the chain.

let devnet: Devnet;
let facilitator: Awaited<ReturnType<typeof serveCountingFacilitator>>;
let directory: string;
const servers: ResourceServer[] = [];
/** Requests to `?hold=1` wait for this: a handler still running while another request arrives. */
let gate: Promise<void> = Promise.resolve();

const accounts = () => ({
  payer: devnetAccount(devnet, 0),
  permit2Payer: devnetAccount(devnet, 1),
  payee: devnetAccount(devnet, 2),
  relayer: devnetAccount(devnet, 3),
  authorizer: devnetAccount(devnet, 4),
  concurrent: devnetAccount(devnet, 5),
  racer: devnetAccount(devnet, 6),
});

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 7 });
  const { relayer, authorizer } = accounts();
  const official = officialBatchFacilitator(
    devnet.rpcUrl,
    devnet.chainId,
    relayer.privateKey,
    authorizer.privateKey,
  );
  facilitator = await serveCountingFacilitator(official);
  directory = await mkdtemp(join(tmpdir(), "x402-channels-"));
}, 60_000);
afterAll(async () => {
  for (const server of servers) await server.stop();
  await facilitator?.stop();
  await devnet?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

async function startServer(overrides: Partial<ResourceServerOptions> = {}): Promise<ResourceServer> {
  const { payee } = accounts();
  const handler = async (request: FastifyRequest, reply: Parameters<typeof setSettlementOverrides>[0]) => {
    const { charge, hold, fail } = request.query as { charge?: string; hold?: string; fail?: string };
    if (hold) await gate;
    if (fail) {
      reply.code(500);
      return { failed: true };
    }
    if (charge !== undefined) setSettlementOverrides(reply, { amount: charge });
    return { paid: true };
  };
  const server = await startResourceServer({
    facilitatorUrl: facilitator.url,
    routes: {
      "GET /batch": { price: "$0.001", payTo: payee.address, scheme: "batch-settlement" },
      "GET /batch/permit2": {
        price: "$0.001",
        payTo: payee.address,
        scheme: "batch-settlement",
        assetTransferMethod: "permit2",
      },
    },
    handlers: { "GET /batch": handler, "GET /batch/permit2": handler },
    ...overrides,
  });
  servers.push(server);
  return server;
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

/** The official client with a fresh local channel store: what a payer who lost its state looks like. */
function officialPayer(privateKey: Hex) {
  const account = privateKeyToAccount(privateKey);
  const scheme = new BatchClient(toClientEvmSigner(account, devnet.client));
  const client = new x402Client().register(BASE_NETWORK, scheme);
  return { address: account.address, scheme, client, fetch: wrapFetchWithPayment(fetch, client) };
}

type Receipt = {
  success: boolean;
  transaction: string;
  amount?: string;
  errorReason?: string;
  extra?: { chargedAmount?: string; channelState?: { channelId: Hex; chargedCumulativeAmount?: string } };
};

function receiptOf(response: Response): Receipt {
  const header = response.headers.get("payment-response");
  expect(header, "PAYMENT-RESPONSE").toBeTruthy();
  return decodePaymentResponseHeader(header ?? "") as Receipt;
}

async function challenge(url: string): Promise<PaymentRequired> {
  const response = await fetch(url);
  expect(response.status).toBe(402);
  return decodePaymentRequiredHeader(response.headers.get("payment-required") ?? "");
}

const requiredOf = (response: Response) =>
  decodePaymentRequiredHeader(response.headers.get("payment-required") ?? "");

describe("batch-settlement on the paywall", () => {
  it("offers a channel with the facilitator's receiver authorizer, the delay and the minimum deposit", async () => {
    const server = await startServer();
    const { authorizer } = accounts();
    const required = await challenge(`${server.url}/batch`);
    expect(required.accepts[0]).toMatchObject({
      scheme: "batch-settlement",
      amount: "1000",
      extra: {
        name: "USD Coin",
        version: "2",
        receiverAuthorizer: privateKeyToAccount(authorizer.privateKey).address,
        withdrawDelay: 900,
        minDeposit: "10000",
      },
    });
    expect(required.accepts[0]?.extra).not.toHaveProperty("assetTransferMethod");
    const permit2 = await challenge(`${server.url}/batch/permit2`);
    expect(permit2.accepts[0]?.extra).toMatchObject({ assetTransferMethod: "permit2" });
  });

  it("deposits, serves vouchers without the facilitator or the chain, corrects a lost client, claims, settles and refunds", async () => {
    const server = await startServer();
    const { payer, payee } = accounts();
    const start = { payer: await balanceOf(payer.address), payee: await balanceOf(payee.address) };
    const charged: bigint[] = [];
    const paid = (response: Response) => {
      expect(response.status).toBe(200);
      const receipt = receiptOf(response);
      expect(receipt.success).toBe(true);
      charged.push(BigInt(receipt.extra?.chargedAmount ?? "0"));
      return receipt;
    };

    // 1. A deposit of minDeposit opens the channel, through the facilitator.
    const a = officialPayer(payer.privateKey);
    const deposit = paid(await a.fetch(`${server.url}/batch`));
    expect(deposit).toMatchObject({ amount: "10000", extra: { chargedAmount: "1000" } });
    expect(deposit.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(deposit.extra?.channelState?.chargedCumulativeAmount).toBe("1000");
    const channelId = deposit.extra?.channelState?.channelId as Hex;
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });
    expect(facilitator.calls.slice(-2)).toEqual(["verify:deposit", "settle:deposit"]);

    // 2. Vouchers: neither the facilitator nor the chain hears of them; the handler meters the third.
    const calls = facilitator.calls.length;
    const block = await devnet.client.getBlockNumber();
    const voucher = paid(await a.fetch(`${server.url}/batch`));
    expect(voucher).toMatchObject({
      transaction: "",
      amount: "",
      extra: { chargedAmount: "1000", channelState: { channelId, chargedCumulativeAmount: "2000" } },
    });
    const metered = paid(await a.fetch(`${server.url}/batch?charge=400`));
    expect(metered.extra).toMatchObject({
      chargedAmount: "400",
      channelState: { chargedCumulativeAmount: "2400" },
    });
    expect(facilitator.calls.length).toBe(calls);
    expect(await devnet.client.getBlockNumber()).toBe(block);

    // 3. A client that lost its books starts from the chain (nothing claimed) and is corrected by the server.
    const b = officialPayer(payer.privateKey);
    const stale = await b.client.createPaymentPayload(await challenge(`${server.url}/batch`));
    const refused = await fetch(`${server.url}/batch`, {
      headers: { "payment-signature": encodePaymentSignatureHeader(stale) },
    });
    expect(refused.status).toBe(402);
    const corrective = requiredOf(refused);
    expect(corrective.error).toBe("invalid_batch_settlement_evm_cumulative_amount_mismatch");
    expect(corrective.accepts[0]?.extra).toMatchObject({
      channelState: { channelId, balance: "10000", totalClaimed: "0", chargedCumulativeAmount: "2400" },
      // The metered request was signed for 3,000 and charged 400: the voucher covers more than was charged.
      voucherState: { signedMaxClaimable: "3000" },
    });
    // The fetch wrapper adopts the corrective state and pays on top of it.
    const resumed = paid(await b.fetch(`${server.url}/batch`));
    expect(resumed.extra?.channelState?.chargedCumulativeAmount).toBe("3400");
    expect(facilitator.calls.length).toBe(calls);
    expect(await devnet.client.getBlockNumber()).toBe(block);

    // 4. The channel manager claims the latest voucher and sweeps the claimed total to payTo.
    const manager = server.channels;
    if (!manager) throw new Error("no channel manager");
    const { claims, settles } = await manager.claimAndSettle();
    expect(claims).toMatchObject([{ vouchers: 1 }]);
    expect(settles).toMatchObject([{ receiver: payee.address, amount: "3400" }]);
    const total = charged.reduce((sum, c) => sum + c, 0n);
    expect(total).toBe(3_400n);
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: total });
    expect(await balanceOf(payee.address)).toBe(start.payee + total);
    expect(facilitator.calls.slice(calls)).toEqual(["settle:claim", "settle:settle"]);
    // Nothing is claimed twice.
    expect(await manager.claimAndSettle()).toEqual({ claims: [], settles: [] });

    // 5. The client's cooperative refund: the handler is skipped, the rest goes back to the payer.
    const refund = await b.scheme.refund(`${server.url}/batch`);
    expect(refund).toMatchObject({ success: true, amount: "6600" });
    expect(await balanceOf(payer.address)).toBe(start.payer - total);
    expect(await channel(channelId)).toEqual({ balance: total, totalClaimed: total });
  });

  it("answers a refund request with the acknowledgement instead of the handler's body", async () => {
    const server = await startServer();
    const { concurrent } = accounts();
    const c = officialPayer(concurrent.privateKey);
    expect((await c.fetch(`${server.url}/batch`)).status).toBe(200);
    // Metered: a voucher signed for 2,000 and charged 1,300, so the refund voucher (at 1,300) is a new one.
    const metered = receiptOf(await c.fetch(`${server.url}/batch?charge=300`));
    expect(metered.extra?.channelState?.chargedCumulativeAmount).toBe("1300");
    let body: unknown;
    const refund = await c.scheme.refund(`${server.url}/batch`, {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (response.status === 200) body = await response.clone().json();
        return response;
      },
    });
    expect(refund).toMatchObject({ success: true, amount: "8700" });
    expect(body).toEqual({
      message: "Refund acknowledged",
      channelId: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    // The charged 1,300 was claimed with the refund; the manager sweeps it.
    const settled = await server.channels?.settle();
    expect(settled?.map((s) => s.amount)).toContain("1300");
  });
});

describe("channel books across a restart and the shutdown", () => {
  it("claims and settles on shutdown, and a new server on the same files accepts the next voucher", async () => {
    const { permit2Payer, payee } = accounts();
    const store = { channelStore: { directory: join(directory, "restart") } } as const;
    const first = await startServer({ batchSettlement: store });
    await approvePermit2(devnet.client, [permit2Payer], USDC_ADDRESS, devnet.mineOnDemand);
    const p = officialPayer(permit2Payer.privateKey);
    const deposit = receiptOf(await p.fetch(`${first.url}/batch/permit2`));
    expect(deposit).toMatchObject({ success: true, amount: "10000" });
    const channelId = deposit.extra?.channelState?.channelId as Hex;
    const metered = receiptOf(await p.fetch(`${first.url}/batch/permit2?charge=500`));
    expect(metered.extra?.channelState?.chargedCumulativeAmount).toBe("1500");
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 0n });

    // Shutdown claims what was charged and sweeps it to payTo.
    const payeeBefore = await balanceOf(payee.address);
    servers.splice(servers.indexOf(first), 1);
    await first.stop();
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 1_500n });
    expect(await balanceOf(payee.address)).toBe(payeeBefore + 1_500n);

    // A new server reads the same books: the client's next voucher (1,500 + 1,000) is accepted as it is,
    // checked against the persisted on-chain mirror without a facilitator call.
    const second = await startServer({ batchSettlement: store });
    const calls = facilitator.calls.length;
    const next = await p.fetch(`${second.url}/batch/permit2`);
    expect(next.status).toBe(200);
    expect(receiptOf(next)).toMatchObject({
      transaction: "",
      extra: {
        chargedAmount: "1000",
        channelState: { channelId, chargedCumulativeAmount: "2500", totalClaimed: "1500" },
      },
    });
    expect(facilitator.calls.length).toBe(calls);
    servers.splice(servers.indexOf(second), 1);
    await second.stop();
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 2_500n });
    expect(await balanceOf(payee.address)).toBe(payeeBefore + 2_500n);
  });
});

describe("one channel, concurrent requests", () => {
  it("serves one of two requests carrying the same voucher and charges it once", async () => {
    const server = await startServer();
    const { racer } = accounts();
    const r = officialPayer(racer.privateKey);
    const deposit = receiptOf(await r.fetch(`${server.url}/batch`));
    const channelId = deposit.extra?.channelState?.channelId as Hex;

    let open = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const url = `${server.url}/batch?hold=1`;
    const payment = await r.client.createPaymentPayload(await challenge(url));
    const headers = { "payment-signature": encodePaymentSignatureHeader(payment) };
    const requests = [fetch(url, { headers }), fetch(url, { headers })];
    // One holds the channel inside its handler, so the other is answered first, and refused.
    const firstAnswered = await Promise.race(requests);
    expect(firstAnswered.status).toBe(402);
    expect(requiredOf(firstAnswered).error).toBe("invalid_batch_settlement_evm_channel_busy");
    open();
    const answers = await Promise.all(requests);
    const served = answers.filter((a) => a.status === 200);
    expect(served).toHaveLength(1);
    expect(receiptOf(served[0] as Response).extra?.channelState?.chargedCumulativeAmount).toBe("2000");

    // The same voucher again is behind the books: a corrective 402, not a second charge.
    const replay = await fetch(`${server.url}/batch`, { headers });
    expect(replay.status).toBe(402);
    expect(requiredOf(replay)).toMatchObject({
      error: "invalid_batch_settlement_evm_cumulative_amount_mismatch",
      accepts: [{ extra: { channelState: { chargedCumulativeAmount: "2000" } } }],
    });

    // The client never saw that receipt (raw fetch): the wrapper's next payment is corrected, then served.
    const corrected = await r.fetch(`${server.url}/batch`);
    expect(receiptOf(corrected).extra?.channelState?.chargedCumulativeAmount).toBe("3000");

    // A failed handler charges nothing and frees the channel for the same voucher.
    const next = await r.client.createPaymentPayload(await challenge(`${server.url}/batch`));
    const nextHeaders = { "payment-signature": encodePaymentSignatureHeader(next) };
    const failed = await fetch(`${server.url}/batch?fail=1`, { headers: nextHeaders });
    expect(failed.status).toBe(500);
    expect(failed.headers.get("payment-response")).toBeNull();
    // A charge beyond the voucher is refused, and charges nothing either.
    const over = await fetch(`${server.url}/batch?charge=1001`, { headers: nextHeaders });
    expect(over.status).toBe(402);
    expect(receiptOf(over)).toMatchObject({
      success: false,
      errorReason: "invalid_batch_settlement_evm_charge_exceeds_signed_cumulative",
    });
    const retried = await fetch(`${server.url}/batch`, { headers: nextHeaders });
    expect(retried.status).toBe(200);
    expect(receiptOf(retried).extra?.channelState?.chargedCumulativeAmount).toBe("4000");

    await server.channels?.claim([channelId]);
    expect(await channel(channelId)).toEqual({ balance: 10_000n, totalClaimed: 4_000n });
  });
});
