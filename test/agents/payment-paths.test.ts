import { decodePaymentSignatureHeader } from "@x402/core/http";
import { erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../../src/agents/index.ts";
import { approvePermit2, type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type ResourceServer, setSettlementOverrides, startResourceServer } from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
import { serveOfficialFacilitator } from "../support/official-facilitator-http.ts";

// Our agents on the Permit2 paths: what they sign, what their books count, and how they get a signature
// a server kept back out of their budgets again.
let devnet: Devnet;
let facilitator: { url: string; stop(): Promise<void> };
let server: ResourceServer;
/** The payment header of the last request the failing route saw: what a hostile server keeps. */
let kept: string | undefined;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 8 });
  const relayer = devnetAccount(devnet, 7);
  facilitator = await serveOfficialFacilitator(
    officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey, { upto: true }),
  );
  await approvePermit2(
    devnet.client,
    [0, 1, 2, 3].map((i) => devnetAccount(devnet, i)),
    USDC_ADDRESS,
    false,
  );
  const payTo = devnetAccount(devnet, 6).address;
  server = await startResourceServer({
    facilitatorUrl: facilitator.url,
    routes: {
      "GET /exact/evm/eip3009": { price: "$0.001", payTo },
      "GET /exact/evm/permit2": { price: "$0.001", payTo, assetTransferMethod: "permit2" },
      "GET /upto/evm/permit2": { price: "$0.002", payTo, scheme: "upto" },
      "GET /broken": { price: "$0.001", payTo, assetTransferMethod: "permit2" },
    },
    handlers: {
      "GET /upto/evm/permit2": async (_request, reply) => {
        setSettlementOverrides(reply, { amount: "700" });
        return { tokens: 700 };
      },
      "GET /broken": async (request, reply) => {
        kept = request.headers["payment-signature"] as string | undefined;
        return reply.code(500).send({ error: "handler_failed" });
      },
    },
  });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await facilitator?.stop();
  await devnet?.stop();
});

const balanceOf = (address: Hex) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

describe("an agent on every exact and upto path", () => {
  it.each([
    ["exact/eip3009", "/exact/evm/eip3009", 1_000n, 1_000n],
    ["exact/permit2", "/exact/evm/permit2", 1_000n, 1_000n],
    // The books count the signed maximum: a server's word on what it metered is not proof.
    ["upto/permit2", "/upto/evm/permit2", 700n, 2_000n],
  ])("pays %s, and books it by its path", async (path, route, charged, booked) => {
    const payer = devnetAccount(devnet, 0);
    const agent = createAgent({ privateKey: payer.privateKey });
    const before = await balanceOf(payer.address);
    const result = await agent.request(`${server.url}${route}`);
    expect(result).toMatchObject({ outcome: "paid", status: 200 });
    expect(before - (await balanceOf(payer.address))).toBe(charged);
    expect(agent.spent).toBe(booked);
    expect(agent.reserved).toBe(0n);
    expect(agent.payments).toEqual([expect.objectContaining({ path, amount: booked })]);
  });

  it("signs the Permit2 path through a viem account as through a key", async () => {
    const payer = devnetAccount(devnet, 1);
    const agent = createAgent({ account: privateKeyToAccount(payer.privateKey) });
    expect(await agent.request(`${server.url}/upto/evm/permit2`)).toMatchObject({ outcome: "paid" });
    expect(agent.payments[0]).toMatchObject({ path: "upto/permit2" });
  });

  it("refuses the paths its policy leaves out, before signing anything", async () => {
    const agent = createAgent({
      privateKey: devnetAccount(devnet, 0).privateKey,
      policy: { paymentPaths: ["exact/eip3009"] },
    });
    for (const route of ["/exact/evm/permit2", "/upto/evm/permit2"]) {
      expect(await agent.request(`${server.url}${route}`)).toMatchObject({
        outcome: "refused_by_policy",
        errorCode: "scheme_not_supported",
      });
    }
    expect(agent.reserved).toBe(0n);
  });

  it("counts an upto maximum against its budget, not the metered amount", async () => {
    const agent = createAgent({
      privateKey: devnetAccount(devnet, 0).privateKey,
      policy: { budgetPerRun: 3_000n },
    });
    expect(await agent.request(`${server.url}/upto/evm/permit2`)).toMatchObject({ outcome: "paid" });
    expect(await agent.request(`${server.url}/upto/evm/permit2`)).toMatchObject({
      outcome: "refused_by_policy",
      errorCode: "budget_run",
    });
  });
});

describe("a Permit2 signature the server did not accept", () => {
  it("stays outstanding; reconcile charges it once a hostile holder settles it", async () => {
    const payer = devnetAccount(devnet, 2);
    const agent = createAgent({ privateKey: payer.privateKey });
    expect(await agent.request(`${server.url}/broken`)).toMatchObject({ outcome: "payment_failed" });
    expect(agent.outstanding).toHaveLength(1);
    expect(agent.reserved).toBe(1_000n);
    expect(await agent.reconcile(devnet.client)).toMatchObject({ charged: [], released: [] });

    const payment = decodePaymentSignatureHeader(kept ?? "");
    const response = await fetch(`${facilitator.url}/settle`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        x402Version: 2,
        paymentPayload: payment,
        paymentRequirements: payment.accepted,
      }),
    });
    expect(await response.json()).toMatchObject({ success: true });
    const reconciled = await agent.reconcile(devnet.client);
    expect(reconciled.charged).toHaveLength(1);
    expect(agent.spent).toBe(1_000n);
    expect(agent.reserved).toBe(0n);
    expect(agent.payments[0]).toMatchObject({ path: "exact/permit2", confirmedBy: "chain" });
  });

  it("is invalidated on Permit2 by cancelOutstanding, which frees its budget and makes it worthless", async () => {
    const payer = devnetAccount(devnet, 3);
    const agent = createAgent({ privateKey: payer.privateKey });
    expect(await agent.request(`${server.url}/broken`)).toMatchObject({ outcome: "payment_failed" });
    const signed = kept ?? "";
    const cancelled = await agent.cancelOutstanding(devnet.client);
    expect(cancelled.released).toHaveLength(1);
    expect(agent.reserved).toBe(0n);
    expect(agent.spent).toBe(0n);

    const payment = decodePaymentSignatureHeader(signed);
    const response = await fetch(`${facilitator.url}/settle`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        x402Version: 2,
        paymentPayload: payment,
        paymentRequirements: payment.accepted,
      }),
    });
    expect(await response.json()).toMatchObject({ success: false });
  });
});
