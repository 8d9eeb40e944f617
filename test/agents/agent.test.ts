import { mnemonicToAccount, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Agent,
  behaviours,
  createAgent,
  createWalletPool,
  type PaymentDraft,
} from "../../src/agents/index.ts";
import { DEFAULT_MNEMONIC } from "../../src/chain/index.ts";
import {
  decodePaymentResponseHeader,
  decodePaymentSignatureHeader,
  type ExactEvmPayload,
  transferWithAuthorizationTypes,
  typedDataMessage,
} from "../../src/protocol/index.ts";
import {
  type CountingServer,
  type PaymentStack,
  type Stub,
  startPaymentStack,
  startStub,
} from "./harness.ts";

const PRICE = 1000n; // "$0.001"

let stack: PaymentStack;
let server: CountingServer;
let v1Only: Stub;

beforeAll(async () => {
  stack = await startPaymentStack();
  server = await stack.serve({
    acceptV1: true,
    routes: {
      "GET /weather": { price: "$0.001", payTo: stack.payee.address },
      "POST /echo": { price: "$0.001", payTo: stack.payee.address },
    },
    handlers: { "POST /echo": async (request) => ({ received: request.body }) },
  });
  // A legacy server: its 402 is only the v1 JSON body; X-PAYMENT requests are passed to our server.
  v1Only = await startStub(async (request, response) => {
    const payment = request.headers["x-payment"];
    const upstream = await fetch(`${server.url}/weather`, {
      headers: typeof payment === "string" ? { "x-payment": payment } : {},
    });
    const body = await upstream.text();
    const receipt = upstream.headers.get("x-payment-response");
    response.writeHead(upstream.status, {
      "content-type": "application/json",
      ...(receipt ? { "x-payment-response": receipt } : {}),
    });
    response.end(body);
  });
});
afterAll(async () => {
  await v1Only?.stop();
  await stack?.stop();
});

function account(index: number) {
  const found = stack.devnet.accounts[index];
  if (!found) throw new Error(`no account ${index}`);
  return found;
}

describe("an agent paying our server", () => {
  it("pays a paid route: 200, a settlement, balances moved by exactly the price", async () => {
    const payer = account(0);
    const agent = createAgent({ privateKey: payer.privateKey });
    const before = await stack.usdc([payer.address, stack.payee.address]);

    const result = await agent.request(`${server.url}/weather`);

    expect(result).toMatchObject({ status: 200, outcome: "paid", amount: PRICE, payTo: stack.payee.address });
    expect(result.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(result.body).toMatchObject({ paid: true });
    const after = await stack.usdc([payer.address, stack.payee.address]);
    expect(after[0]).toBe((before[0] as bigint) - PRICE);
    expect(after[1]).toBe((before[1] as bigint) + PRICE);
    const receipt = await stack.devnet.client.getTransactionReceipt({
      hash: result.transaction as `0x${string}`,
    });
    expect(receipt.status).toBe("success");

    expect(agent.spent).toBe(PRICE);
    expect(agent.reserved).toBe(0n);
    expect(agent.payments).toEqual([
      expect.objectContaining({ amount: PRICE, transaction: result.transaction, x402Version: 2 }),
    ]);
    for (const phase of ["challenge", "sign", "paid", "e2e", "verify", "settle"] as const) {
      expect(result.timings[phase], phase).toBeGreaterThan(0);
    }
    expect(result.timings.e2e).toBeGreaterThanOrEqual(
      (result.timings.challenge ?? 0) + (result.timings.sign ?? 0) + (result.timings.paid ?? 0),
    );
  });

  it("answers a route the server does not sell with its 404 as an error, without paying", async () => {
    const agent = createAgent({ privateKey: account(0).privateKey });
    const result = await agent.request(`${server.url}/not-priced`);
    expect(result).toMatchObject({ status: 404, outcome: "error", errorCode: "http_404" });
    expect(result.timings.sign).toBeUndefined();
    expect(agent.spent).toBe(0n);
  });

  it("pays a cached challenge in one round trip", async () => {
    const agent = createAgent({ privateKey: account(1).privateKey });
    const requirements = await agent.probe(`${server.url}/weather`);
    expect(requirements?.x402Version).toBe(2);
    if (!requirements) throw new Error("no challenge");

    const requestsBefore = server.seen.requests;
    const first = await agent.pay(`${server.url}/weather`, { requirements });
    const second = await agent.pay(`${server.url}/weather`, { requirements });
    expect([first.outcome, second.outcome]).toEqual(["paid", "paid"]);
    expect(first.transaction).not.toBe(second.transaction);
    expect(first.timings.challenge).toBeUndefined();
    expect(server.seen.requests - requestsBefore).toBe(2);
    expect(agent.spent).toBe(2n * PRICE);
  });

  it("is a fetch: a WHATWG Response with the receipt header", async () => {
    const agent = createAgent({ privateKey: account(2).privateKey });
    const response = await agent.fetch(`${server.url}/weather`);
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(200);
    expect(response.url).toBe(`${server.url}/weather`);
    expect(await response.json()).toMatchObject({ paid: true });
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, network: "eip155:8453" });
  });

  it("sends the request body again with the payment", async () => {
    const agent = createAgent({ privateKey: account(2).privateKey });
    const result = await agent.request(`${server.url}/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question: 42 }),
    });
    expect(result).toMatchObject({ status: 200, outcome: "paid", body: { received: { question: 42 } } });
  });

  it("signs with the fast path exactly what viem's signTypedData signs", async () => {
    const payer = account(3);
    let draft: PaymentDraft | undefined;
    const agent = createAgent({
      privateKey: payer.privateKey,
      behaviour: (d) => {
        draft = d;
        return behaviours.honest(d);
      },
    });
    const paidHeaders: string[] = [];
    const capture = (request: { headers: Record<string, unknown> }) => {
      const value = request.headers["payment-signature"];
      if (typeof value === "string") paidHeaders.push(value);
    };
    server.app.server.on("request", capture);
    try {
      expect((await agent.request(`${server.url}/weather`)).outcome).toBe("paid");
    } finally {
      server.app.server.off("request", capture);
    }

    const sent = decodePaymentSignatureHeader(paidHeaders[0] ?? "");
    const { signature, authorization } = sent.payload as ExactEvmPayload;
    expect(authorization).toEqual(draft?.authorization);
    const viaViem = await privateKeyToAccount(payer.privateKey).signTypedData({
      domain: {
        name: "USD Coin",
        version: "2",
        chainId: 8453,
        verifyingContract: sent.accepted.asset as `0x${string}`,
      },
      types: transferWithAuthorizationTypes,
      primaryType: "TransferWithAuthorization",
      message: typedDataMessage(authorization),
    });
    expect(signature).toBe(viaViem);
    // The official client's defaults: valid from 0 until now + maxTimeoutSeconds.
    expect(authorization.validAfter).toBe("0");
    const lifetime = Number(authorization.validBefore) - Math.floor(Date.now() / 1000);
    expect(lifetime).toBeGreaterThan(290);
    expect(lifetime).toBeLessThanOrEqual(300);
  });

  it("pays with a viem account instead of a key", async () => {
    const agent = createAgent({ account: privateKeyToAccount(account(4).privateKey) });
    expect(agent.address).toBe(account(4).address);
    expect(await agent.request(`${server.url}/weather`)).toMatchObject({ outcome: "paid", status: 200 });
  });
});

describe("x402 v1", () => {
  it("pays a v1-speaking agent's X-PAYMENT to our server with acceptV1", async () => {
    const payer = account(5);
    const agent = createAgent({ privateKey: payer.privateKey, x402Version: 1 });
    const [before] = await stack.usdc([payer.address]);
    const v1Before = server.seen.paid;

    const result = await agent.request(`${server.url}/weather`);

    expect(result).toMatchObject({ status: 200, outcome: "paid", amount: PRICE });
    expect(result.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(server.seen.paid - v1Before).toBe(1);
    expect(agent.payments[0]?.x402Version).toBe(1);
    const [after] = await stack.usdc([payer.address]);
    expect(after).toBe((before as bigint) - PRICE);
  });

  it("reads a 402 that has only a v1 body and pays it with X-PAYMENT", async () => {
    const payer = account(5);
    const agent = createAgent({ privateKey: payer.privateKey });
    const requirements = await agent.probe(`${v1Only.url}/weather`);
    expect(requirements).toMatchObject({
      x402Version: 1,
      accepts: [{ network: "base", maxAmountRequired: "1000" }],
    });

    const result = await agent.request(`${v1Only.url}/weather`);
    expect(result).toMatchObject({ status: 200, outcome: "paid", amount: PRICE });
    expect(result.transaction).toMatch(/^0x[0-9a-f]{64}$/);
  });
});

describe("wallet pool", () => {
  it("derives the same wallets as viem's HD accounts, funds them in bulk, and makes agents of them", async () => {
    const pool = createWalletPool({ count: 3, offset: 500 });
    expect(pool.addresses).toEqual(
      [500, 501, 502].map((addressIndex) => mnemonicToAccount(DEFAULT_MNEMONIC, { addressIndex }).address),
    );
    expect(await stack.usdc(pool.addresses)).toEqual([0n, 0n, 0n]);

    await pool.fund(stack.devnet, { eth: 0n, usdc: 5_000n });
    expect(await stack.usdc(pool.addresses)).toEqual([5_000n, 5_000n, 5_000n]);

    const agents: Agent[] = pool.agents({ policy: { budgetPerRun: PRICE } });
    const results = await Promise.all(agents.map((agent) => agent.request(`${server.url}/weather`)));
    expect(results.map((r) => r.outcome)).toEqual(["paid", "paid", "paid"]);
    expect(await stack.usdc(pool.addresses)).toEqual([4_000n, 4_000n, 4_000n]);
  });
});
