import { once } from "node:events";
import { createServer } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { erc20Abi, type Hex } from "viem";
import { type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import {
  encodeXPaymentHeader,
  type PaymentPayload,
  type PaymentPayloadV1,
} from "../../src/protocol/index.ts";

/** anvil plus our facilitator, settling with the last devnet account. */
export async function startDevnetAndFacilitator(
  accounts = 12,
): Promise<{ devnet: Devnet; facilitator: Facilitator; stop(): Promise<void> }> {
  const devnet = await startDevnet({ accounts });
  try {
    const relayer = devnet.accounts[accounts - 1];
    if (!relayer) throw new Error("no relayer account");
    const facilitator = await startFacilitator({
      exact: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [relayer.privateKey] },
    });
    return {
      devnet,
      facilitator,
      stop: async () => {
        await facilitator.stop();
        await devnet.stop();
      },
    };
  } catch (error) {
    await devnet.stop();
    throw error;
  }
}

/** USDC balances, one per address, read in one multicall. */
export async function usdcBalances<const T extends readonly Hex[]>(
  devnet: Devnet,
  addresses: T,
): Promise<{ [K in keyof T]: bigint }> {
  const balances = await devnet.client.multicall({
    allowFailure: false,
    contracts: addresses.map(
      (address) =>
        ({ address: USDC_ADDRESS, abi: erc20Abi, functionName: "balanceOf", args: [address] }) as const,
    ),
  });
  return balances as { [K in keyof T]: bigint };
}

/** The v1 `X-PAYMENT` a legacy client sends for a v2 payment's signed authorization. */
export function xPaymentHeader(payment: PaymentPayload): string {
  // Core's v1 type gives `network` v2's CAIP-2 template type, though v1 carries the name `base`.
  const network = "base" as PaymentPayloadV1["network"];
  return encodeXPaymentHeader({ x402Version: 1, scheme: "exact", network, payload: payment.payload });
}

/** A port nothing listens on: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (typeof address !== "object" || !address) throw new Error("no address");
  return address.port;
}

/** A promise with its resolver, for a test to wait on an event instead of on time. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

type Forward = (path: "/verify" | "/settle", body: unknown) => Promise<{ status: number; text: string }>;

/**
 * A facilitator between the server and the real one, whose `/settle` answer a test scripts per call; each
 * script gets `forward` to pass the call on (so a settle can happen and its answer still be lost).
 * `/verify` is forwarded, unless `verifyAnswer` fixes its answer.
 */
export async function startScriptedFacilitator(
  realUrl: string,
  settle: (call: number, body: unknown, forward: Forward) => Promise<{ status: number; text: string }>,
  options: { verifyAnswer?: { status: number; text: string } } = {},
): Promise<{ url: string; settleCalls: () => number; app: FastifyInstance }> {
  const forward: Forward = async (path, body) => {
    const response = await fetch(`${realUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  };
  let calls = 0;
  const app = Fastify();
  app.post("/verify", async (request, res) => {
    const answer = options.verifyAnswer ?? (await forward("/verify", request.body));
    return res.code(answer.status).type("application/json").send(answer.text);
  });
  app.post("/settle", async (request, res) => {
    calls += 1;
    const answer = await settle(calls, request.body, forward);
    return res.code(answer.status).type("application/json").send(answer.text);
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return { url: `http://127.0.0.1:${address.port}`, settleCalls: () => calls, app };
}
