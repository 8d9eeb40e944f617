import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentResult,
  BASE_USDC,
  createAgent,
  createWalletPool,
  PolicyError,
  type PolicyReason,
  type SpendingPolicy,
} from "../../src/agents/index.ts";
import { USDC_ADDRESS } from "../../src/chain/index.ts";
import {
  type CountingServer,
  type PaymentStack,
  type Stub,
  send402,
  startPaymentStack,
  startStub,
} from "./harness.ts";

const PRICE = 1000n;

let stack: PaymentStack;
let server: CountingServer;
/** Same routes, but the 402 names a token the agents do not know. */
let foreignAsset: CountingServer;
/** Same routes, but USDC's EIP-712 domain is misnamed. */
let misnamedAsset: CountingServer;
let stubs: Stub[] = [];

beforeAll(async () => {
  stack = await startPaymentStack();
  const payTo = stack.payee.address;
  server = await stack.serve({
    routes: {
      "GET /weather": { price: "$0.001", payTo },
      "GET /pricey": { price: "$2", payTo },
      "GET /slow": { price: "$0.001", payTo, maxTimeoutSeconds: 7200 },
    },
  });
  const routes = { "GET /weather": { price: "$0.001" as const, payTo } };
  foreignAsset = await stack.serve({
    routes,
    asset: {
      address: stack.devnet.accounts[0]?.address as Hex,
      decimals: 6,
      extra: { name: "USD Coin", version: "2" },
    },
  });
  misnamedAsset = await stack.serve({
    routes,
    asset: { address: USDC_ADDRESS, decimals: 6, extra: { name: "USDC", version: "2" } },
  });
});
afterAll(async () => {
  for (const stub of stubs) await stub.stop();
  await stack?.stop();
});

async function stub(handle: Parameters<typeof startStub>[0]): Promise<Stub> {
  const started = await startStub(handle);
  stubs = [...stubs, started];
  return started;
}

function payer(index: number) {
  const found = stack.devnet.accounts[index];
  if (!found) throw new Error(`no account ${index}`);
  return found;
}

/**
 * Runs `act` and checks that nothing was paid: no request carrying a payment reached any server, and the
 * payer's and payee's balances did not move.
 */
async function expectNoPayment(payerIndex: number, act: () => Promise<unknown>): Promise<void> {
  const watched = [server, foreignAsset, misnamedAsset, ...stubs];
  const paidBefore = watched.map((s) => s.seen.paid);
  const addresses = [payer(payerIndex).address, stack.payee.address];
  const before = await stack.usdc(addresses);
  await act();
  expect(watched.map((s) => s.seen.paid)).toEqual(paidBefore);
  expect(await stack.usdc(addresses)).toEqual(before);
}

async function refusal(payerIndex: number, policy: SpendingPolicy, url: string): Promise<AgentResult> {
  const agent = createAgent({ privateKey: payer(payerIndex).privateKey, policy });
  let result: AgentResult | undefined;
  await expectNoPayment(payerIndex, async () => {
    result = await agent.request(url);
  });
  if (!result) throw new Error("no result");
  expect(result.outcome).toBe("refused_by_policy");
  expect(result.error).toBeInstanceOf(PolicyError);
  expect(agent.spent).toBe(0n);
  expect(agent.reserved).toBe(0n);
  return result;
}

describe("policy refusals happen before anything is signed", () => {
  const cases: [PolicyReason, string, SpendingPolicy, () => string][] = [
    ["max_per_payment", "$2 over the default $1 cap", {}, () => `${server.url}/pricey`],
    [
      "max_per_payment",
      "a cap one unit below the price",
      { maxPerPayment: PRICE - 1n },
      () => `${server.url}/weather`,
    ],
    [
      "recipient_not_allowed",
      "a payee outside the allow list",
      { allowedRecipients: ["0x000000000000000000000000000000000000dEaD"] },
      () => `${server.url}/weather`,
    ],
    [
      "network_not_allowed",
      "Base when only Base Sepolia is allowed",
      { networks: ["eip155:84532"] },
      () => `${server.url}/weather`,
    ],
    ["asset_unknown", "a token that is not USDC", {}, () => `${foreignAsset.url}/weather`],
    ["asset_unknown", "USDC's address under another EIP-712 name", {}, () => `${misnamedAsset.url}/weather`],
    [
      "asset_unknown",
      "an allowed network without a known token",
      { assets: [{ ...BASE_USDC, network: "eip155:84532" }], networks: ["eip155:8453"] },
      () => `${server.url}/weather`,
    ],
    ["authorization_too_long", "7200 s over the default 3600 s", {}, () => `${server.url}/slow`],
    [
      "authorization_too_long",
      "300 s over a 60 s limit",
      { maxAuthorizationSeconds: 60 },
      () => `${server.url}/weather`,
    ],
    [
      "host_not_allowed",
      "a host outside the allow list",
      { allowedHosts: ["example.com"] },
      () => `${server.url}/weather`,
    ],
  ];
  it.each(cases)("%s: %s", async (reason, _case, policy, url) => {
    const result = await refusal(0, policy, url());
    expect(result.errorCode).toBe(reason);
  });

  it("host_not_allowed after a redirect: the disallowed server sees no request at all", async () => {
    const redirector = await stub((_request, response) => {
      response.writeHead(302, { location: `${server.url}/weather` });
      response.end();
    });
    const requestsBefore = server.seen.requests;
    const result = await refusal(0, { allowedHosts: [new URL(redirector.url).host] }, `${redirector.url}/go`);
    expect(result.errorCode).toBe("host_not_allowed");
    expect(redirector.seen.requests).toBe(1);
    expect(server.seen.requests).toBe(requestsBefore);
  });

  it("follows an allowed redirect and pays the final URL", async () => {
    const redirector = await stub((_request, response) => {
      response.writeHead(307, { location: `${server.url}/weather` });
      response.end();
    });
    const agent = createAgent({
      privateKey: payer(1).privateKey,
      policy: { allowedHosts: [new URL(redirector.url).host, new URL(server.url).host] },
    });
    const result = await agent.request(`${redirector.url}/go`);
    expect(result).toMatchObject({ outcome: "paid", url: `${server.url}/weather` });
    expect(redirector.seen.paid).toBe(0);
  });

  it("too_many_redirects on a redirect loop", async () => {
    const loop = await stub((request, response) => {
      response.writeHead(302, { location: request.url ?? "/" });
      response.end();
    });
    const result = await refusal(0, { maxRedirects: 3 }, `${loop.url}/again`);
    expect(result.errorCode).toBe("too_many_redirects");
    expect(loop.seen.requests).toBe(4);
  });

  const offer = {
    scheme: "exact",
    network: "eip155:8453",
    asset: USDC_ADDRESS,
    amount: "1000",
    payTo: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    maxTimeoutSeconds: 300,
    extra: { name: "USD Coin", version: "2" },
  };
  const v2 = (accepts: unknown[]) => ({ x402Version: 2, resource: { url: "http://x/" }, accepts });
  const malformed: [string, (response: import("node:http").ServerResponse) => void][] = [
    ["no PAYMENT-REQUIRED and no v1 body", (r) => r.writeHead(402).end("pay me")],
    ["a header that is not base64", (r) => r.writeHead(402, { "payment-required": "%%%" }).end()],
    ["a header without accepts", (r) => send402(r, v2([]))],
    ["an amount that is not an integer", (r) => send402(r, v2([{ ...offer, amount: "1.5" }]))],
    ["a payTo that is not an address", (r) => send402(r, v2([{ ...offer, payTo: "alice" }]))],
    ["a fractional timeout", (r) => send402(r, v2([{ ...offer, maxTimeoutSeconds: 0.5 }]))],
    ["one bad accept among good ones", (r) => send402(r, v2([offer, { ...offer, amount: "-1" }]))],
    [
      "a v1 body without accepts",
      (r) => r.writeHead(402, { "content-type": "application/json" }).end('{"x402Version":1,"accepts":[]}'),
    ],
  ];
  it.each(malformed)("malformed_402: %s", async (_name, answer) => {
    const bad = await stub((_request, response) => answer(response));
    const result = await refusal(0, {}, `${bad.url}/paid`);
    expect(result.errorCode).toBe("malformed_402");
    expect(bad.seen.requests).toBe(1);
  });

  it("scheme_not_supported: paths the agent does not speak, an upto offer naming no facilitator, and paths the policy leaves out", async () => {
    const unknown = await stub((_request, response) =>
      send402(
        response,
        v2([
          { ...offer, scheme: "upto" },
          { ...offer, extra: { ...offer.extra, assetTransferMethod: "eip2612" } },
          { ...offer, scheme: "batch-settlement" },
        ]),
      ),
    );
    const result = await refusal(0, {}, `${unknown.url}/paid`);
    expect(result.errorCode).toBe("scheme_not_supported");
    expect(result.error?.message).toMatch(/upto offer without extra.facilitatorAddress/);
    const permit2 = await stub((_request, response) =>
      send402(response, v2([{ ...offer, extra: { ...offer.extra, assetTransferMethod: "permit2" } }])),
    );
    const left = await refusal(0, { paymentPaths: ["exact/eip3009"] }, `${permit2.url}/paid`);
    expect(left).toMatchObject({ errorCode: "scheme_not_supported" });
    expect(left.error?.message).toMatch(/exact\/permit2/);
  });

  it("pays the first accept the policy allows", async () => {
    const mixed = await stub((request, response) => {
      if (request.headers["payment-signature"]) {
        response.writeHead(200).end("ok");
        return;
      }
      send402(response, v2([{ ...offer, amount: "5000000" }, { ...offer, network: "eip155:1" }, offer]));
    });
    const agent = createAgent({ privateKey: payer(0).privateKey });
    const result = await agent.request(`${mixed.url}/paid`);
    expect(result).toMatchObject({ outcome: "paid", amount: 1000n, network: "eip155:8453" });
  });

  it("fetch throws the PolicyError", async () => {
    const agent = createAgent({ privateKey: payer(0).privateKey, policy: { maxPerPayment: 1n } });
    const error = await agent.fetch(`${server.url}/weather`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).reason).toBe("max_per_payment");
  });
});

describe("budgets", () => {
  it("budget_run and max_payments_per_url count payments over the agent's life", async () => {
    const agent = createAgent({
      privateKey: payer(2).privateKey,
      // The query names the city, so each city is its own URL.
      policy: { budgetPerRun: 3n * PRICE, maxPaymentsPerUrl: 2, perUrlKey: "origin+path+query" },
    });
    const outcome = async (url: string) => {
      const result = await agent.request(url);
      return result.outcome === "paid" ? "paid" : result.errorCode;
    };
    expect(await outcome(`${server.url}/weather`)).toBe("paid");
    expect(await outcome(`${server.url}/weather`)).toBe("paid");
    expect(await outcome(`${server.url}/weather`)).toBe("max_payments_per_url");
    expect(await outcome(`${server.url}/weather?city=lisbon`)).toBe("paid");
    await expectNoPayment(2, async () => {
      expect(await outcome(`${server.url}/weather?city=porto`)).toBe("budget_run");
    });
    expect(agent.spent).toBe(3n * PRICE);
  });

  it("budget_day", async () => {
    const agent = createAgent({
      privateKey: payer(2).privateKey,
      policy: { budgetPerRun: 10n * PRICE, budgetPerDay: PRICE },
    });
    expect((await agent.request(`${server.url}/weather`)).outcome).toBe("paid");
    await expectNoPayment(2, async () => {
      expect((await agent.request(`${server.url}/weather`)).errorCode).toBe("budget_day");
    });
  });

  it("never overspends under 20 concurrent requests", async () => {
    const wallet = payer(3);
    const agent = createAgent({ privateKey: wallet.privateKey, policy: { budgetPerRun: 5n * PRICE } });
    const [before] = await stack.usdc([wallet.address]);
    const paidBefore = server.seen.paid;

    const results = await Promise.all(
      Array.from({ length: 20 }, () => agent.request(`${server.url}/weather`)),
    );

    const count = (what: string) => results.filter((r) => (r.errorCode ?? r.outcome) === what).length;
    expect(count("paid")).toBe(5);
    expect(count("budget_run")).toBe(15);
    expect(server.seen.paid - paidBefore).toBe(5);
    expect(agent.spent).toBe(5n * PRICE);
    expect(agent.reserved).toBe(0n);
    const [after] = await stack.usdc([wallet.address]);
    expect((before as bigint) - (after as bigint)).toBe(5n * PRICE);
  });

  it("a payment the server refuses keeps its budget until it is cancelled on chain", async () => {
    // A fresh wallet without USDC: the facilitator refuses its payment until it is funded. It gets ETH to
    // pay for its own cancellation.
    const pool = createWalletPool({ count: 1, offset: 700 });
    const [wallet] = pool.wallets;
    if (!wallet) throw new Error("no wallet");
    await pool.fund(stack.devnet, { eth: 10n ** 17n, usdc: 0n });
    const agent = createAgent({ account: wallet, policy: { budgetPerRun: PRICE, maxPaymentsPerUrl: 1 } });

    const refused = await agent.request(`${server.url}/weather`);
    expect(refused).toMatchObject({
      outcome: "payment_failed",
      status: 402,
      errorCode: "invalid_exact_evm_insufficient_balance",
    });
    // The refusal does not void the signature: once the wallet is funded, the server could still settle it.
    expect(agent.reserved).toBe(PRICE);
    expect(agent.outstanding).toHaveLength(1);
    await pool.fund(stack.devnet, { usdc: PRICE });
    await expectNoPayment(2, async () => {
      expect(await agent.request(`${server.url}/weather`)).toMatchObject({
        outcome: "refused_by_policy",
        errorCode: "max_payments_per_url",
      });
    });

    expect((await agent.cancelOutstanding(stack.devnet.client)).released).toHaveLength(1);
    expect(agent.reserved).toBe(0n);
    expect(await agent.request(`${server.url}/weather`)).toMatchObject({ outcome: "paid" });
    expect(agent.spent).toBe(PRICE);
    expect(await stack.usdc(pool.addresses)).toEqual([0n]);
  });
});
