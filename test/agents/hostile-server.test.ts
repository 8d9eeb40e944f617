import type { ServerResponse } from "node:http";
import { type Hex, isAddressEqual } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type Agent, type AgentResult, createAgent, type SpendingPolicy } from "../../src/agents/index.ts";
import { BASE_NETWORK, mockUsdcAbi, USDC_ADDRESS } from "../../src/chain/index.ts";
import { decodePaymentSignatureHeader, type ExactEvmPayload } from "../../src/protocol/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { type PaymentStack, type Stub, send402, startPaymentStack, startStub } from "./harness.ts";

/*
 * Servers that lie to the agent, in front of real anvil. A signed EIP-3009 authorization is money until it
 * expires, whatever the server answers, so the agent's books must count it until the chain proves it dead.
 */

const PRICE = 1000n;

let stack: PaymentStack;

beforeAll(async () => {
  stack = await startPaymentStack();
});
afterAll(async () => {
  await stack?.stop();
});

const account = (index: number) => devnetAccount(stack.devnet, index);

/** Pays the gas of the hostile server's settlements; it is neither payer nor payee. */
const thief = () => privateKeyToAccount(account(9).privateKey);

type Hostile = Stub & {
  /** Every PAYMENT-SIGNATURE header it was sent, in order. */
  held: string[];
  /** Settles held authorizations on chain itself; what the token said to each. */
  cash(headers?: readonly string[]): Promise<("cashed" | "refused")[]>;
};

type HostileOptions = {
  /** What it does with a paid request: refuse it (402) after keeping the header, settle it first, or never answer. */
  paid?: "refuse" | "settle-then-refuse" | "hang";
  maxTimeoutSeconds?: number;
};

function paymentRequired(url: string, maxTimeoutSeconds: number, error?: string) {
  return {
    x402Version: 2,
    ...(error ? { error } : {}),
    resource: { url },
    accepts: [
      {
        scheme: "exact",
        network: BASE_NETWORK,
        asset: USDC_ADDRESS,
        amount: String(PRICE),
        payTo: stack.payee.address,
        maxTimeoutSeconds,
        extra: { name: "USD Coin", version: "2" },
      },
    ],
  };
}

async function cashOne(header: string): Promise<"cashed" | "refused"> {
  const { signature, authorization: a } = decodePaymentSignatureHeader(header).payload as ExactEvmPayload;
  try {
    const hash = await stack.devnet.client.writeContract({
      account: thief(),
      address: USDC_ADDRESS,
      abi: mockUsdcAbi,
      functionName: "transferWithAuthorization",
      args: [
        a.from,
        a.to,
        BigInt(a.value),
        BigInt(a.validAfter),
        BigInt(a.validBefore),
        a.nonce as Hex,
        signature as Hex,
      ],
    });
    const receipt = await stack.devnet.client.waitForTransactionReceipt({ hash });
    return receipt.status === "success" ? "cashed" : "refused";
  } catch {
    // The token refused it at gas estimation: used, cancelled or expired.
    return "refused";
  }
}

/** A server that asks for $0.001 on every path and does `options.paid` with the payments. */
async function startHostile(options: HostileOptions = {}): Promise<Hostile> {
  const { paid = "refuse", maxTimeoutSeconds = 300 } = options;
  const held: string[] = [];
  const stub = await startStub(async (request, response: ServerResponse) => {
    const url = `http://${request.headers.host}${request.url}`;
    const payment = request.headers["payment-signature"];
    if (typeof payment !== "string") {
      send402(response, paymentRequired(url, maxTimeoutSeconds));
      return;
    }
    held.push(payment);
    if (paid === "hang") return;
    if (paid === "settle-then-refuse") await cashOne(payment);
    // The lie: as if the payer had no funds.
    send402(response, paymentRequired(url, maxTimeoutSeconds, "invalid_exact_evm_insufficient_balance"));
  });
  onTestFinished(() => stub.stop());
  const cash = async (headers: readonly string[] = held) => {
    const results: ("cashed" | "refused")[] = [];
    for (const header of headers) results.push(await cashOne(header));
    return results;
  };
  return Object.assign(stub, { held, cash });
}

const usdcOf = async (address: Hex) => (await stack.usdc([address]))[0] as bigint;

/** `count` requests one after the other; each result as its error code, else its outcome. */
async function requests(agent: Agent, url: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const result: AgentResult = await agent.request(url);
    seen.push(result.outcome === "payment_failed" ? "refused" : (result.errorCode ?? result.outcome));
  }
  return seen;
}

const nonceOf = (header: string) =>
  (
    (decodePaymentSignatureHeader(header).payload as ExactEvmPayload).authorization.nonce as string
  ).toLowerCase();

function agentFor(index: number, policy: SpendingPolicy): Agent {
  return createAgent({ privateKey: account(index).privateKey, policy });
}

describe("a server that refuses every payment and keeps the signatures", () => {
  it("stops the agent at budgetPerRun; reserved reports them; reconcile charges them once cashed", async () => {
    const payer = account(0);
    const hostile = await startHostile();
    const agent = agentFor(0, { budgetPerRun: 3n * PRICE });
    const before = await usdcOf(payer.address);

    expect(await requests(agent, `${hostile.url}/weather`, 6)).toEqual([
      "refused",
      "refused",
      "refused",
      "budget_run",
      "budget_run",
      "budget_run",
    ]);
    expect(hostile.held).toHaveLength(3);
    expect([agent.spent, agent.reserved]).toEqual([0n, 3n * PRICE]);
    expect(agent.payments).toEqual([]);
    expect(agent.outstanding.map((o) => o.nonce.toLowerCase())).toEqual(hostile.held.map(nonceOf));
    expect(agent.outstanding[0]).toMatchObject({
      url: `${hostile.url}/weather`,
      resourceKey: `${hostile.url}/weather`,
      amount: PRICE,
      payTo: stack.payee.address,
      asset: USDC_ADDRESS,
      network: BASE_NETWORK,
      x402Version: 2,
    });
    expect(agent.outstanding[0]?.validBefore).toBeGreaterThan(BigInt(Math.floor(Date.now() / 1000)));

    // Nothing on chain yet: the books stay as they are.
    expect(await agent.reconcile(stack.devnet.client)).toMatchObject({ charged: [], released: [] });
    expect(agent.reserved).toBe(3n * PRICE);

    expect(await hostile.cash()).toEqual(["cashed", "cashed", "cashed"]);
    const lost = before - (await usdcOf(payer.address));
    expect(lost).toBe(3n * PRICE);

    const settled = await agent.reconcile(stack.devnet.client);
    expect(settled.charged).toHaveLength(3);
    expect(settled.outstanding).toEqual([]);
    expect([agent.spent, agent.reserved]).toEqual([lost, 0n]);
    expect(agent.payments.map((p) => p.confirmedBy)).toEqual(["chain", "chain", "chain"]);
    expect(agent.outstanding).toEqual([]);
    // Spent is at the budget: still nothing more is signed.
    expect(await requests(agent, `${hostile.url}/weather`, 1)).toEqual(["budget_run"]);
    expect(hostile.held).toHaveLength(3);
  });

  it("one that settles each payment and still answers 402 takes budgetPerRun at most", async () => {
    const payer = account(1);
    const hostile = await startHostile({ paid: "settle-then-refuse" });
    const agent = agentFor(1, { budgetPerRun: 2n * PRICE });
    const before = await usdcOf(payer.address);

    expect(await requests(agent, `${hostile.url}/weather`, 5)).toEqual([
      "refused",
      "refused",
      "budget_run",
      "budget_run",
      "budget_run",
    ]);
    expect(before - (await usdcOf(payer.address))).toBe(2n * PRICE);
    expect((await agent.reconcile(stack.devnet.client)).charged).toHaveLength(2);
    expect([agent.spent, agent.reserved]).toEqual([2n * PRICE, 0n]);
  });

  it("a refused payment keeps its URL's slot (maxPaymentsPerUrl)", async () => {
    const hostile = await startHostile();
    const agent = agentFor(2, { maxPaymentsPerUrl: 2 });

    expect(await requests(agent, `${hostile.url}/item`, 4)).toEqual([
      "refused",
      "refused",
      "max_payments_per_url",
      "max_payments_per_url",
    ]);
    expect(await requests(agent, `${hostile.url}/other`, 1)).toEqual(["refused"]);
    expect(hostile.held).toHaveLength(3);

    await hostile.cash();
    await agent.reconcile(stack.devnet.client);
    expect(agent.payments.map((p) => p.resourceKey)).toEqual([
      `${hostile.url}/item`,
      `${hostile.url}/item`,
      `${hostile.url}/other`,
    ]);
    expect(await requests(agent, `${hostile.url}/item`, 1)).toEqual(["max_payments_per_url"]);
  });

  it("a paid request the server never answers leaves its signature outstanding", async () => {
    const hostile = await startHostile({ paid: "hang" });
    const agent = createAgent({
      privateKey: account(3).privateKey,
      policy: { budgetPerRun: PRICE },
      timeoutMs: 200,
    });

    const result = await agent.request(`${hostile.url}/weather`);
    expect(result).toMatchObject({ outcome: "error", errorCode: "UND_ERR_HEADERS_TIMEOUT", amount: PRICE });
    expect(agent.outstanding).toHaveLength(1);
    expect(await requests(agent, `${hostile.url}/weather`, 1)).toEqual(["budget_run"]);

    expect(await hostile.cash()).toEqual(["cashed"]);
    expect((await agent.reconcile(stack.devnet.client)).charged).toHaveLength(1);
    expect([agent.spent, agent.reserved]).toEqual([PRICE, 0n]);
  });
});

describe("proving a signature dead frees its budget", () => {
  it("cancelAuthorization: released, and the server can no longer cash it", async () => {
    const payer = account(4);
    const hostile = await startHostile();
    const agent = agentFor(4, { budgetPerRun: 2n * PRICE, maxPaymentsPerUrl: 2 });
    const before = await usdcOf(payer.address);

    expect(await requests(agent, `${hostile.url}/weather`, 3)).toEqual([
      "refused",
      "refused",
      "max_payments_per_url",
    ]);

    // The agent's own key pays the gas: the devnet funds its wallets with ETH.
    const cancelled = await agent.cancelOutstanding(stack.devnet.client);
    expect(cancelled.released.map((o) => o.nonce.toLowerCase())).toEqual(hostile.held.map(nonceOf));
    expect(cancelled.charged).toEqual([]);
    expect([agent.spent, agent.reserved, agent.outstanding.length]).toEqual([0n, 0n, 0]);

    expect(await hostile.cash()).toEqual(["refused", "refused"]);
    expect(await usdcOf(payer.address)).toBe(before);
    // Budget and URL slots are free again.
    expect(await requests(agent, `${hostile.url}/weather`, 1)).toEqual(["refused"]);
  });

  it("a cancellation that loses the race to a settlement charges that one and releases the other", async () => {
    const payer = account(5);
    const hostile = await startHostile();
    const agent = agentFor(5, { budgetPerRun: 2n * PRICE });
    const before = await usdcOf(payer.address);
    expect(await requests(agent, `${hostile.url}/weather`, 2)).toEqual(["refused", "refused"]);

    expect(await hostile.cash(hostile.held.slice(0, 1))).toEqual(["cashed"]);
    const result = await agent.cancelOutstanding(stack.devnet.client);

    expect(result.charged.map((o) => o.nonce.toLowerCase())).toEqual([nonceOf(hostile.held[0] as string)]);
    expect(result.released.map((o) => o.nonce.toLowerCase())).toEqual([nonceOf(hostile.held[1] as string)]);
    expect([agent.spent, agent.reserved]).toEqual([PRICE, 0n]);
    expect(before - (await usdcOf(payer.address))).toBe(agent.spent);
  });

  it("cancelling from a client's own account, for an agent that only has a viem account", async () => {
    const hostile = await startHostile();
    const payer = account(6);
    const agent = createAgent({
      // signTypedData only: this agent cannot send a transaction itself.
      account: { address: payer.address, signTypedData: privateKeyToAccount(payer.privateKey).signTypedData },
      policy: { budgetPerRun: PRICE },
    });
    expect(await requests(agent, `${hostile.url}/weather`, 2)).toEqual(["refused", "budget_run"]);
    await expect(agent.cancelOutstanding(stack.devnet.client)).rejects.toThrow(TypeError);

    const { createWalletClient, http, publicActions } = await import("viem");
    const sponsor = createWalletClient({
      account: thief(),
      chain: stack.devnet.client.chain,
      transport: http(stack.devnet.rpcUrl),
    }).extend(publicActions);
    const result = await agent.cancelOutstanding(sponsor);
    expect(result.released).toHaveLength(1);
    expect(agent.reserved).toBe(0n);
    expect(await hostile.cash()).toEqual(["refused"]);
  });

  // Last in the file: it moves the chain's clock ahead of the host's.
  it("expiry: one unused in a block past validBefore is released; one cashed before it expired is charged", async () => {
    const payer = account(7);
    const hostile = await startHostile({ maxTimeoutSeconds: 60 });
    const agent = agentFor(7, { budgetPerRun: 2n * PRICE });
    const before = await usdcOf(payer.address);
    expect(await requests(agent, `${hostile.url}/weather`, 3)).toEqual(["refused", "refused", "budget_run"]);
    expect(await hostile.cash(hostile.held.slice(0, 1))).toEqual(["cashed"]);

    // Still valid on chain: reconcile can prove nothing about the second one yet.
    expect(await agent.reconcile(stack.devnet.client)).toMatchObject({ released: [], outstanding: [{}] });
    expect(agent.reserved).toBe(PRICE);

    const validBefore = agent.outstanding[0]?.validBefore ?? 0n;
    await stack.devnet.client.setNextBlockTimestamp({ timestamp: validBefore });
    await stack.devnet.client.mine({ blocks: 1 });

    const result = await agent.reconcile(stack.devnet.client);
    expect(result.released.map((o) => o.nonce.toLowerCase())).toEqual([nonceOf(hostile.held[1] as string)]);
    expect(result.outstanding).toEqual([]);
    // An expired signature may have been cashed before it expired: only the chain tells them apart.
    expect([agent.spent, agent.reserved]).toEqual([PRICE, 0n]);
    expect(before - (await usdcOf(payer.address))).toBe(PRICE);
    expect(await hostile.cash(hostile.held.slice(1))).toEqual(["refused"]);
    expect(isAddressEqual(agent.payments[0]?.payTo ?? "0x", stack.payee.address)).toBe(true);
  });
});

describe("maxPaymentsPerUrl counts what the caller asked for", () => {
  /** Serves whatever it is paid for (without settling: only the slots matter here) and asks 402 otherwise. */
  async function startSeller(redirect?: (n: number) => string): Promise<Stub> {
    let redirects = 0;
    const stub = await startStub((request, response) => {
      const url = new URL(request.url ?? "/", `http://${request.headers.host}`);
      if (redirect && url.pathname === "/item") {
        redirects += 1;
        response.writeHead(302, { location: redirect(redirects) }).end();
      } else if (typeof request.headers["payment-signature"] === "string") {
        response.writeHead(200, { "content-type": "text/plain" }).end("the item");
      } else {
        send402(response, paymentRequired(url.href, 300));
      }
    });
    onTestFinished(() => stub.stop());
    return stub;
  }

  const attacks: [string, (n: number) => string][] = [
    ["a redirect to a fresh query string each time", (n) => `/item/pay?attempt=${n}`],
    ["a redirect to a fresh path each time", (n) => `/pay/${n}`],
  ];
  it.each(attacks)("%s opens no new slot", async (_attack, redirect) => {
    const seller = await startSeller(redirect);
    const agent = agentFor(8, { maxPaymentsPerUrl: 2 });
    expect(await requests(agent, `${seller.url}/item`, 4)).toEqual([
      "paid",
      "paid",
      "max_payments_per_url",
      "max_payments_per_url",
    ]);
    expect(seller.seen.paid).toBe(2);
    // The payments went where the redirects led; both count for the URL asked for.
    expect(new Set(agent.payments.map((p) => p.url)).size).toBe(2);
    expect(agent.payments.map((p) => p.resourceKey)).toEqual([`${seller.url}/item`, `${seller.url}/item`]);
  });

  it("by default a query string or fragment of the caller's does not make a new URL", async () => {
    const seller = await startSeller();
    const agent = agentFor(8, { maxPaymentsPerUrl: 1 });
    expect(await requests(agent, `${seller.url}/weather?cache=1`, 1)).toEqual(["paid"]);
    expect(await requests(agent, `${seller.url}/weather?cache=2`, 1)).toEqual(["max_payments_per_url"]);
    expect(await requests(agent, `${seller.url}/weather#top`, 1)).toEqual(["max_payments_per_url"]);
    expect(await requests(agent, `${seller.url}/./weather`, 1)).toEqual(["max_payments_per_url"]);
    expect(await requests(agent, `${seller.url}/news`, 1)).toEqual(["paid"]);
    expect(seller.seen.paid).toBe(2);
  });

  it("perUrlKey names distinct resources by their query string, or by any key", async () => {
    const seller = await startSeller();
    const byQuery = agentFor(8, { maxPaymentsPerUrl: 1, perUrlKey: "origin+path+query" });
    expect(await requests(byQuery, `${seller.url}/weather?city=lisbon`, 2)).toEqual([
      "paid",
      "max_payments_per_url",
    ]);
    expect(await requests(byQuery, `${seller.url}/weather?city=porto`, 1)).toEqual(["paid"]);

    const bySku = agentFor(8, {
      maxPaymentsPerUrl: 1,
      perUrlKey: (url) => `${url.origin}/sku/${url.searchParams.get("sku")}`,
    });
    expect(await requests(bySku, `${seller.url}/buy?sku=1&utm=a`, 1)).toEqual(["paid"]);
    expect(await requests(bySku, `${seller.url}/buy?utm=b&sku=1`, 1)).toEqual(["max_payments_per_url"]);
    expect(await requests(bySku, `${seller.url}/buy?sku=2`, 1)).toEqual(["paid"]);
    expect(bySku.payments.map((p) => p.resourceKey)).toEqual([`${seller.url}/sku/1`, `${seller.url}/sku/2`]);
  });
});
