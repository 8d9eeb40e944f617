import { x402Client } from "@x402/core/client";
import { decodePaymentResponseHeader } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { BASE_NETWORK, deployPayoutSplitter } from "../../src/chain/index.ts";
import { startResourceServer } from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { startOfficialServer } from "../support/official-server.ts";
import { startDevnetAndFacilitator, usdcBalances } from "./harness.ts";

let stack: Awaited<ReturnType<typeof startDevnetAndFacilitator>>;

beforeAll(async () => {
  stack = await startDevnetAndFacilitator();
});
afterAll(async () => {
  await stack?.stop();
});

const account = (index: number) => devnetAccount(stack.devnet, index);

/** The official buyer: @x402/fetch over @x402/core's client with the EVM exact scheme, default spend controls. */
function officialFetch(privateKey: Hex) {
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(privateKey) });
  return wrapFetchWithPayment(fetch, client);
}

describe("official x402 packages", () => {
  it("the official client pays our server, and exactly the price moves on chain", async () => {
    const [payer, payee] = [account(0), account(1)];
    const server = await startResourceServer({
      facilitatorUrl: stack.facilitator.url,
      routes: { "GET /weather": { price: "$0.001", payTo: payee.address } },
    });
    onTestFinished(() => server.stop());
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const response = await officialFetch(payer.privateKey)(`${server.url}/weather`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ paid: true });
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, network: BASE_NETWORK });
    expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - 1000n,
      before[1] + 1000n,
    ]);
  });

  it("the official client pays a PayoutSplitter unchanged; each payee gets its share in the same transaction", async () => {
    const payer = account(0);
    const payees = [account(1).address, account(2).address, account(3).address];
    const shares = [5_000, 3_000, 2_000];
    const splitter = await deployPayoutSplitter(stack.devnet.client, { payees, shares });
    const server = await startResourceServer({
      facilitatorUrl: stack.facilitator.url,
      routes: { "GET /bundle": { price: 10_007n, payTo: splitter } },
    });
    onTestFinished(() => server.stop());
    const before = await usdcBalances(stack.devnet, [payer.address, splitter, ...payees]);

    const response = await officialFetch(payer.privateKey)(`${server.url}/bundle`);
    expect(response.status).toBe(200);
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    const after = await usdcBalances(stack.devnet, [payer.address, splitter, ...payees]);
    // 5,003 + 1 remainder, 3,002, 2,001: the rounding rule, and nothing left in the splitter.
    expect(after.map((b, i) => b - (before[i] as bigint))).toEqual([-10_007n, 0n, 5_004n, 3_002n, 2_001n]);
    const mined = await stack.devnet.client.getTransactionReceipt({ hash: receipt.transaction as Hex });
    const distributed = mined.logs.filter((log) => log.address.toLowerCase() === splitter.toLowerCase());
    expect(distributed).toHaveLength(1);
  });

  it("the official client pays an upfront route", async () => {
    const [payer, payee] = [account(0), account(2)];
    const server = await startResourceServer({
      facilitatorUrl: stack.facilitator.url,
      routes: { "POST /jobs": { price: "$0.05", payTo: payee.address, flow: "upfront" } },
    });
    onTestFinished(() => server.stop());
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const response = await officialFetch(payer.privateKey)(`${server.url}/jobs`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(decodePaymentResponseHeader(response.headers.get("payment-response") ?? "").success).toBe(true);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - 50_000n,
      before[1] + 50_000n,
    ]);
  });

  it("the official express middleware settles through our facilitator, paid by the official client", async () => {
    const [payer, payee] = [account(3), account(4)];
    const server = await startOfficialServer(stack.facilitator.url, payee.address);
    onTestFinished(() => server.stop());
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const response = await officialFetch(payer.privateKey)(`${server.url}/weather`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sunny: true });
    expect(decodePaymentResponseHeader(response.headers.get("payment-response") ?? "")).toMatchObject({
      success: true,
      network: BASE_NETWORK,
    });
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - 1000n,
      before[1] + 1000n,
    ]);
  });
});
