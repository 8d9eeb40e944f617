import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  erc20Abi,
  type Hex,
  http,
  parseEventLogs,
  publicActions,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { base } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapFetchWithPayment as legacyWrapFetchWithPayment } from "x402-fetch";
import { type Ready, startUp } from "../support/up.ts";

/** A v1 receipt as legacy clients decode it (`decodeXPaymentResponse`: base64 JSON, nothing more). */
type V1Receipt = { success: boolean; transaction: Hex; network: string; payer?: Address };

let up: Awaited<ReturnType<typeof startUp>> | undefined;
let ready: Ready;

beforeAll(async () => {
  up = await startUp();
  ready = up.ready;
});

afterAll(() => up?.stop());

const chain = () => createPublicClient({ chain: base, transport: http(ready.rpcUrl) });

async function usdcOf(...addresses: Address[]): Promise<bigint[]> {
  const client = chain();
  return Promise.all(
    addresses.map((address) =>
      client.readContract({ address: ready.usdc, abi: erc20Abi, functionName: "balanceOf", args: [address] }),
    ),
  );
}

/** The only paid route `up` serves by default; the tests pay what the ready line lists. */
function weather() {
  const route = ready.routes.find((r) => r.method === "GET" && r.path === "/weather");
  if (!route) throw new Error(`up lists no GET /weather: ${JSON.stringify(ready.routes)}`);
  return { ...route, url: `${ready.serverUrl}${route.path}`, price: BigInt(route.price) };
}

/**
 * A fetch that keeps every payment header its client sends and, for a v1 client, hides the v2
 * `PAYMENT-REQUIRED` header: the official client then reads the v1 body and pays with `X-PAYMENT`, as the
 * legacy `x402-fetch` 1.x does (which never looks at that header).
 */
function recordingFetch(sent: Headers[], hideV2: boolean): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    sent.push(new Headers(request.headers));
    const response = await fetch(request);
    if (!hideV2 || response.status !== 402) return response;
    const headers = new Headers(response.headers);
    headers.delete("payment-required");
    return new Response(await response.arrayBuffer(), { status: response.status, headers });
  };
}

function officialFetch(privateKey: Hex, fetcher: typeof fetch): typeof fetch {
  const client = new x402Client();
  // Registers v2 `eip155:*` and, for the v1 path, every legacy network name (`base` among them).
  registerExactEvmScheme(client, { signer: privateKeyToAccount(privateKey) });
  return wrapFetchWithPayment(fetcher, client);
}

/** x402 1.x types its signer against the viem release it was built with, which differs from ours only in types. */
type LegacySigner = Parameters<typeof legacyWrapFetchWithPayment>[1];

/** v1 clients, each paying through the fetch it is given. */
const v1Clients: Record<string, (privateKey: Hex, fetcher: typeof fetch) => typeof fetch> = {
  "@x402/fetch 2.27.0 on its v1 path": officialFetch,
  // x402 1.x signs only for chains it knows by id: the devnet is Base's 8453, so viem's `base` at the devnet's RPC.
  "x402-fetch 1.2.0": (privateKey, fetcher) =>
    legacyWrapFetchWithPayment(
      fetcher,
      createWalletClient({
        account: privateKeyToAccount(privateKey),
        chain: base,
        transport: http(ready.rpcUrl),
      }).extend(publicActions) as unknown as LegacySigner,
    ),
};

describe("x402-devnet up serves x402 v1 clients beside v2 ones", () => {
  it("answers an unpaid request with a v1 body that legacy clients parse and the v2 header", async () => {
    const route = weather();
    const unpaid = await fetch(route.url);
    expect(unpaid.status).toBe(402);
    // Every field legacy x402 1.x's PaymentRequirementsSchema requires, with v1's network name.
    expect(await unpaid.json()).toEqual({
      x402Version: 1,
      error: expect.any(String),
      accepts: [
        {
          scheme: "exact",
          network: "base",
          maxAmountRequired: route.price.toString(),
          resource: route.url,
          description: expect.any(String),
          mimeType: "application/json",
          outputSchema: {},
          payTo: route.payTo,
          maxTimeoutSeconds: expect.any(Number),
          asset: ready.usdc,
          extra: { name: "USD Coin", version: "2" },
        },
      ],
    });
    const v2 = decodePaymentRequiredHeader(unpaid.headers.get("payment-required") ?? "");
    expect(v2.x402Version).toBe(2);
    expect(v2.accepts).toEqual([
      expect.objectContaining({
        scheme: "exact",
        network: "eip155:8453",
        amount: route.price.toString(),
        payTo: route.payTo,
      }),
    ]);
  });

  it.each(Object.entries(v1Clients).map(([name, client], i) => [name, client, i] as const))(
    "%s pays with X-PAYMENT and gets X-PAYMENT-RESPONSE; a replay is refused",
    async (_name, v1Client, index) => {
      const route = weather();
      const payer = ready.accounts[index];
      if (!payer) throw new Error(`up funded no account ${index}`);
      const before = await usdcOf(payer.address, route.payTo);
      const sent: Headers[] = [];

      const response = await v1Client(payer.privateKey, recordingFetch(sent, true))(route.url);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ paid: true });
      const paid = sent.at(-1);
      const xPayment = paid?.get("x-payment");
      expect(xPayment).toBeTruthy();
      expect(paid?.get("payment-signature")).toBeNull();
      expect(response.headers.get("payment-response")).toBeNull();
      const receipt = JSON.parse(
        Buffer.from(response.headers.get("x-payment-response") ?? "", "base64").toString("utf8"),
      ) as V1Receipt;
      expect(receipt).toMatchObject({ success: true, network: "base", payer: payer.address });
      expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);

      // The receipt names the transaction that moved the price from payer to payee.
      const mined = await chain().getTransactionReceipt({ hash: receipt.transaction });
      expect(mined.status).toBe("success");
      const transfers = parseEventLogs({ abi: erc20Abi, eventName: "Transfer", logs: mined.logs });
      expect(transfers.map((t) => [t.address.toLowerCase(), t.args])).toContainEqual([
        ready.usdc.toLowerCase(),
        { from: payer.address, to: route.payTo, value: route.price },
      ]);
      const after = await usdcOf(payer.address, route.payTo);
      expect(after).toEqual([(before[0] as bigint) - route.price, (before[1] as bigint) + route.price]);

      const replay = await fetch(route.url, { headers: { "X-PAYMENT": xPayment ?? "" } });
      expect(replay.status).toBe(402);
      expect(replay.headers.get("x-payment-response")).toBeNull();
      expect(await replay.json()).toMatchObject({ x402Version: 1, error: expect.stringMatching(/nonce/) });
      expect(await usdcOf(payer.address, route.payTo)).toEqual(after);
    },
  );

  it("a v2 client still pays the same route with PAYMENT-SIGNATURE", async () => {
    const route = weather();
    const payer = ready.accounts[Object.keys(v1Clients).length];
    if (!payer) throw new Error("up funded too few accounts");
    const before = await usdcOf(payer.address, route.payTo);
    const sent: Headers[] = [];

    const response = await officialFetch(payer.privateKey, recordingFetch(sent, false))(route.url);
    expect(response.status).toBe(200);
    expect(sent.at(-1)?.get("payment-signature")).toBeTruthy();
    expect(sent.at(-1)?.get("x-payment")).toBeNull();
    expect(response.headers.get("x-payment-response")).toBeNull();
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, network: "eip155:8453" });
    expect(await usdcOf(payer.address, route.payTo)).toEqual([
      (before[0] as bigint) - route.price,
      (before[1] as bigint) + route.price,
    ]);
  });
});
