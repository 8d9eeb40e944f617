import { x402Client } from "@x402/core/client";
import { toClientEvmSigner } from "@x402/evm";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  erc20Abi,
  type Hex,
  http,
  maxUint256,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { base, baseSepolia } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../src/agents/index.ts";
import { PERMIT2_ADDRESS } from "../src/chain/index.ts";
import { type Ready, startUp } from "./support/up.ts";

// Every payment path `up` serves, on Base and on Base Sepolia, paid by the official client and by our
// agents, verified and settled by our facilitator, checked on chain.
describe.each([
  ["base", [], base],
  ["base-sepolia", ["--network", "base-sepolia"], baseSepolia],
] as const)("x402-devnet up on %s", (_network, args, viemChain) => {
  let up: Awaited<ReturnType<typeof startUp>> | undefined;
  let ready: Ready;

  beforeAll(async () => {
    up = await startUp(args);
    ready = up.ready;
    // Both Permit2 paths need the payers' allowance, as on Base.
    for (const { privateKey } of ready.accounts) {
      const wallet = createWalletClient({
        account: privateKeyToAccount(privateKey),
        chain: viemChain,
        transport: http(ready.rpcUrl),
      });
      const hash = await wallet.writeContract({
        address: ready.usdc,
        abi: erc20Abi,
        functionName: "approve",
        args: [PERMIT2_ADDRESS, maxUint256],
      });
      await chain().waitForTransactionReceipt({ hash });
    }
  }, 60_000);
  afterAll(() => up?.stop());

  const chain = () =>
    createPublicClient({ chain: viemChain, transport: http(ready.rpcUrl), pollingInterval: 25 });

  const usdcOf = (address: Address) =>
    chain().readContract({ address: ready.usdc, abi: erc20Abi, functionName: "balanceOf", args: [address] });

  function route(path: string) {
    const found = ready.routes.find((r) => r.path === path);
    if (!found) throw new Error(`up lists no ${path}: ${JSON.stringify(ready.routes)}`);
    return found;
  }

  /** An agent that knows the devnet's USDC, whichever network it runs as. */
  function agent() {
    const { usdc, usdcDomain, chainId } = ready;
    return createAgent({
      privateKey: ready.accounts[0]?.privateKey as Hex,
      policy: { assets: [{ network: `eip155:${chainId}`, address: usdc, ...usdcDomain }] },
    });
  }

  function officialFetch(privateKey: Hex): typeof fetch {
    const signer = privateKeyToAccount(privateKey);
    const client = new x402Client()
      .register(`eip155:${ready.chainId}`, new UptoEvmScheme(signer))
      .register(`eip155:${ready.chainId}`, new ExactEvmScheme(signer));
    return wrapFetchWithPayment(fetch, client);
  }

  /** The route's payment, and what the payer lost and the payee gained on chain. */
  async function paid(path: string, pay: (url: string) => Promise<void>, query = "") {
    const { payTo } = route(path);
    const payer = ready.accounts[0]?.address as Address;
    const before = await Promise.all([usdcOf(payer), usdcOf(payTo)]);
    await pay(`${ready.serverUrl}${path}${query}`);
    const after = await Promise.all([usdcOf(payer), usdcOf(payTo)]);
    return { charged: (before[0] ?? 0n) - (after[0] ?? 0n), received: (after[1] ?? 0n) - (before[1] ?? 0n) };
  }

  describe("payment paths", () => {
    it("lists one route per path, with its scheme and transfer method", () => {
      expect(ready.routes.map((r) => `${r.path} ${r.scheme}/${r.assetTransferMethod}`)).toEqual([
        "/weather exact/eip3009",
        "/exact/evm/eip3009 exact/eip3009",
        "/exact/evm/permit2 exact/permit2",
        "/upto/evm/permit2 upto/permit2",
        "/batch-settlement/evm/eip3009 batch-settlement/eip3009",
        "/batch-settlement/evm/permit2 batch-settlement/permit2",
      ]);
    });

    it.each([
      ["/exact/evm/eip3009", "", 1_000n],
      ["/exact/evm/permit2", "", 1_000n],
      ["/upto/evm/permit2", "?used=1234", 1_234n],
    ])("the official client pays %s%s", async (path, query, price) => {
      const privateKey = ready.accounts[0]?.privateKey as Hex;
      let receipt: unknown;
      const moved = await paid(
        path,
        async (url) => {
          const response = await officialFetch(privateKey)(url);
          expect(response.status).toBe(200);
          receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
        },
        query,
      );
      expect(receipt).toMatchObject({ success: true });
      expect(moved).toEqual({ charged: price, received: price });
    });

    it.each([
      ["/exact/evm/eip3009", 1_000n],
      ["/exact/evm/permit2", 1_000n],
    ])("our agent pays %s", async (path, price) => {
      const payer = agent();
      const moved = await paid(path, async (url) => {
        expect(await payer.request(url)).toMatchObject({ outcome: "paid", status: 200 });
      });
      expect(moved).toEqual({ charged: price, received: price });
      expect(payer.spent).toBe(price);
    });

    it("our agent pays the metered route: charged what was metered, booked at most its signed maximum", async () => {
      const payer = agent();
      const moved = await paid("/upto/evm/permit2", async (url) => {
        expect(await payer.request(url)).toMatchObject({ outcome: "paid", status: 200 });
      });
      expect(moved.charged).toBe(moved.received);
      expect(moved.charged).toBeGreaterThan(0n);
      expect(moved.charged).toBeLessThanOrEqual(10_000n);
      expect(payer.spent).toBe(10_000n);
    });

    it("the official client pays /batch-settlement/evm/eip3009: a deposit, then a voucher", async () => {
      const account = privateKeyToAccount(ready.accounts[1]?.privateKey as Hex);
      const client = new x402Client().register(
        `eip155:${ready.chainId}`,
        new BatchSettlementEvmScheme(toClientEvmSigner(account, chain())),
      );
      const pay = wrapFetchWithPayment(fetch, client);
      const url = `${ready.serverUrl}/batch-settlement/evm/eip3009`;
      const height = await chain().getBlockNumber();
      for (let i = 0; i < 3; i++) {
        const response = await pay(url);
        expect(response.status).toBe(200);
        expect(decodePaymentResponseHeader(response.headers.get("payment-response") ?? "")).toMatchObject({
          success: true,
        });
      }
      expect(await chain().getBlockNumber()).toBe(height + 1n);
    });

    it.each(["/batch-settlement/evm/eip3009", "/batch-settlement/evm/permit2"])(
      "our agent pays %s: one deposit, then vouchers with no chain work, then its refund",
      async (path) => {
        const payer = agent();
        const url = `${ready.serverUrl}${path}`;
        const { payTo } = route(path);
        const before = await Promise.all([usdcOf(payer.address), usdcOf(payTo)]);
        const height = await chain().getBlockNumber();
        for (let i = 0; i < 5; i++) {
          expect(await payer.request(url)).toMatchObject({ outcome: "paid", status: 200 });
        }
        // The deposit is the only transaction the five payments cost.
        expect(await chain().getBlockNumber()).toBe(height + 1n);
        const refunds = await payer.refundChannels(undefined, chain());
        expect(refunds).toHaveLength(1);
        // Charged 5 × $0.001; the rest of the deposit came back. The receiver is paid once the server's
        // channel manager claims and settles (on its schedule, or when up stops).
        expect((before[0] ?? 0n) - (await usdcOf(payer.address))).toBe(5_000n);
        expect(payer.spent).toBe(5_000n);
        expect(payer.reserved).toBe(0n);
        expect(await usdcOf(payTo)).toBe(before[1]);
      },
    );
  });
});
