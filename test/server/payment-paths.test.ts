import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, encodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentRequired } from "@x402/core/types";
import { ExactEvmScheme as ExactClient } from "@x402/evm/exact/client";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvePermit2, type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type ResourceServer, setSettlementOverrides, startResourceServer } from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
import { serveOfficialFacilitator } from "../support/official-facilitator-http.ts";

// The paywall's Permit2 paths, paid by the official client: `exact` by Permit2, and `upto` metered by the
// handler through `Settlement-Overrides`.
let devnet: Devnet;
let facilitator: { url: string; stop(): Promise<void> };
let server: ResourceServer;
const accounts = () => ({
  payer: devnetAccount(devnet, 0),
  payee: devnetAccount(devnet, 1),
  relayer: devnetAccount(devnet, 2),
  other: devnetAccount(devnet, 3),
});

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 5 });
  const { payer, payee, relayer, other } = accounts();
  facilitator = await serveOfficialFacilitator(
    officialFacilitator(devnet.rpcUrl, devnet.chainId, relayer.privateKey, { upto: true }),
  );
  await approvePermit2(devnet.client, [payer, other], USDC_ADDRESS, false);
  server = await startResourceServer({
    facilitatorUrl: facilitator.url,
    routes: {
      "GET /exact/evm/permit2": { price: "$0.001", payTo: payee.address, assetTransferMethod: "permit2" },
      "GET /upto/evm/permit2": { price: "$0.002", payTo: payee.address, scheme: "upto" },
    },
    handlers: {
      "GET /upto/evm/permit2": async (request, reply) => {
        const { used } = request.query as { used?: string };
        if (used !== undefined) setSettlementOverrides(reply, { amount: used });
        return { tokens: used ?? "all" };
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

function officialClient(privateKey: Hex) {
  const signer = privateKeyToAccount(privateKey);
  // Both on the network itself: the client looks no further than the first registration that names it.
  return new x402Client()
    .register(`eip155:${devnet.chainId}`, new UptoClient(signer))
    .register(`eip155:${devnet.chainId}`, new ExactClient(signer));
}

async function challenge(path: string): Promise<PaymentRequired> {
  const response = await fetch(`${server.url}${path}`);
  expect(response.status).toBe(402);
  return decodePaymentRequiredHeader(response.headers.get("payment-required") ?? "");
}

/** Pays `path` with the official fetch wrapper; returns the response and the on-chain balance changes. */
async function pay(path: string, privateKey = accounts().payer.privateKey) {
  const payer = privateKeyToAccount(privateKey).address;
  const { payee } = accounts();
  const before = await Promise.all([balanceOf(payer), balanceOf(payee.address)]);
  const response = await wrapFetchWithPayment(fetch, officialClient(privateKey))(`${server.url}${path}`);
  const after = await Promise.all([balanceOf(payer), balanceOf(payee.address)]);
  return {
    response,
    charged: (before[0] ?? 0n) - (after[0] ?? 0n),
    received: (after[1] ?? 0n) - (before[1] ?? 0n),
  };
}

describe("exact by Permit2", () => {
  it("offers the Permit2 method and is paid by the official client", async () => {
    const required = await challenge("/exact/evm/permit2");
    expect(required.accepts[0]).toMatchObject({
      scheme: "exact",
      amount: "1000",
      extra: { name: "USD Coin", version: "2", assetTransferMethod: "permit2" },
    });
    const { response, charged, received } = await pay("/exact/evm/permit2");
    expect(response.status).toBe(200);
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true });
    expect([charged, received]).toEqual([1_000n, 1_000n]);
  });

  it("serves one signature once: a replay of a paid header is refused, and charges nothing", async () => {
    const { payer } = accounts();
    const required = await challenge("/exact/evm/permit2");
    const payment = await officialClient(payer.privateKey).createPaymentPayload(required);
    const header = { "payment-signature": encodePaymentSignatureHeader(payment) };
    const first = await fetch(`${server.url}/exact/evm/permit2`, { headers: header });
    expect(first.status).toBe(200);
    const before = await balanceOf(payer.address);
    const replay = await fetch(`${server.url}/exact/evm/permit2`, { headers: header });
    expect(replay.status).toBe(402);
    expect(decodePaymentRequiredHeader(replay.headers.get("payment-required") ?? "").error).toBe(
      "invalid_exact_evm_nonce_already_used",
    );
    expect(await balanceOf(payer.address)).toBe(before);
  });

  it("serves one of many concurrent requests carrying the same signature, and moves the money once", async () => {
    const { other, payee } = accounts();
    const required = await challenge("/exact/evm/permit2");
    const payment = await officialClient(other.privateKey).createPaymentPayload(required);
    const headers = { "payment-signature": encodePaymentSignatureHeader(payment) };
    const before = await Promise.all([balanceOf(other.address), balanceOf(payee.address)]);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(`${server.url}/exact/evm/permit2`, { headers }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 402)).toBe(true);
    expect(await Promise.all([balanceOf(other.address), balanceOf(payee.address)])).toEqual([
      (before[0] ?? 0n) - 1_000n,
      (before[1] ?? 0n) + 1_000n,
    ]);
  });

  it("answers a Permit2 payload missing its authorization with 400 invalid_payload", async () => {
    const required = await challenge("/exact/evm/permit2");
    const header = encodePaymentSignatureHeader({
      x402Version: 2,
      resource: required.resource,
      accepted: required.accepts[0] as PaymentRequired["accepts"][number],
      payload: { signature: "0x01" },
    });
    const response = await fetch(`${server.url}/exact/evm/permit2`, {
      headers: { "payment-signature": header },
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_payload" });
  });
});

describe("upto, metered by the handler", () => {
  it("names the facilitator that may settle it, from the facilitator's /supported", async () => {
    const required = await challenge("/upto/evm/permit2");
    expect(required.accepts[0]).toMatchObject({
      scheme: "upto",
      amount: "2000",
      extra: { assetTransferMethod: "permit2", facilitatorAddress: accounts().relayer.address },
    });
  });

  it.each([
    ["an atomic amount", "1200", 1_200n],
    ["a percentage of the maximum", "12.5%", 250n],
    ["dollars", "$0.0015", 1_500n],
    ["no override: the maximum", undefined, 2_000n],
  ])("charges exactly what the handler metered: %s", async (_what, used, expected) => {
    const query = used === undefined ? "" : `?used=${encodeURIComponent(used)}`;
    const { response, charged, received } = await pay(`/upto/evm/permit2${query}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("settlement-overrides")).toBeNull();
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, amount: String(expected) });
    expect([charged, received]).toEqual([expected, expected]);
  });

  it("serves a zero metered amount without a transaction", async () => {
    const { response, charged } = await pay("/upto/evm/permit2?used=0");
    expect(response.status).toBe(200);
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, transaction: "", amount: "0" });
    expect(charged).toBe(0n);
  });

  it("never charges more than was signed: a metered amount above the maximum is refused and not served", async () => {
    const { response, charged } = await pay("/upto/evm/permit2?used=2001", accounts().other.privateKey);
    expect(response.status).toBe(402);
    expect(await response.text()).not.toContain("tokens");
    expect(charged).toBe(0n);
  });

  it("answers a handler's nonsense override with 500 and charges nothing", async () => {
    const { response, charged } = await pay("/upto/evm/permit2?used=lots", accounts().other.privateKey);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: "invalid_settlement_overrides" });
    expect(charged).toBe(0n);
  });
});

describe("route settings", () => {
  it("refuses a path that does not exist, naming those that do", async () => {
    await expect(
      startResourceServer({
        facilitatorUrl: facilitator.url,
        routes: {
          "GET /x": {
            price: "1",
            payTo: accounts().payee.address,
            scheme: "upto",
            assetTransferMethod: "eip3009",
          },
        },
      }),
    ).rejects.toThrow(
      /no payment path upto\/eip3009; the paywall serves exact\/eip3009, exact\/permit2, upto\/permit2/,
    );
    await expect(
      startResourceServer({
        facilitatorUrl: facilitator.url,
        routes: {
          "GET /x": { price: "1", payTo: accounts().payee.address, scheme: "upto", flow: "upfront" },
        },
      }),
    ).rejects.toThrow(/cannot be settled upfront/);
  });
});
