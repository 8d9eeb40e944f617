import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { erc20Abi, type Hex } from "viem";
import { type Devnet, type DevnetAccount, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import {
  type ResourceServer,
  type ResourceServerOptions,
  startResourceServer,
} from "../../src/server/index.ts";

export type PaymentStack = {
  devnet: Devnet;
  facilitator: Facilitator;
  /** Settles with the last devnet account; the one before it is the payee. */
  payee: DevnetAccount;
  /** Our resource server, counting the requests that carried a payment header. */
  serve(options: Omit<ResourceServerOptions, "facilitatorUrl">): Promise<CountingServer>;
  usdc(addresses: readonly Hex[]): Promise<bigint[]>;
  stop(): Promise<void>;
};

export type CountingServer = ResourceServer & {
  /** Requests that reached the server at all, and those carrying PAYMENT-SIGNATURE or X-PAYMENT. */
  seen: { requests: number; paid: number };
};

/** A request that carries a payment, in either protocol version. */
export function isPaid(request: IncomingMessage): boolean {
  return request.headers["payment-signature"] !== undefined || request.headers["x-payment"] !== undefined;
}

/** anvil, our facilitator, and our resource servers on loopback, all stopped together. */
export async function startPaymentStack(accounts = 12): Promise<PaymentStack> {
  const devnet = await startDevnet({ accounts });
  const stoppers: (() => Promise<void>)[] = [() => devnet.stop()];
  const stop = async () => {
    for (const stopOne of stoppers.reverse()) await stopOne();
  };
  try {
    const relayer = devnet.accounts[accounts - 1];
    const payee = devnet.accounts[accounts - 2];
    if (!relayer || !payee) throw new Error("not enough accounts");
    const facilitator = await startFacilitator({
      exact: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [relayer.privateKey] },
    });
    stoppers.push(() => facilitator.stop());
    return {
      devnet,
      facilitator,
      payee,
      async serve(options) {
        const server = await startResourceServer({ ...options, facilitatorUrl: facilitator.url });
        stoppers.push(() => server.stop());
        const seen = { requests: 0, paid: 0 };
        // The raw server's event fires for every request, before fastify and the paywall see it.
        server.app.server.on("request", (request: IncomingMessage) => {
          seen.requests += 1;
          if (isPaid(request)) seen.paid += 1;
        });
        return Object.assign(server, { seen });
      },
      usdc: (addresses) =>
        devnet.client.multicall({
          allowFailure: false,
          contracts: addresses.map(
            (address) =>
              ({ address: USDC_ADDRESS, abi: erc20Abi, functionName: "balanceOf", args: [address] }) as const,
          ),
        }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export type Stub = { url: string; seen: { requests: number; paid: number }; stop(): Promise<void> };

/** A hand-written HTTP server on a free loopback port, for 402s and redirects no real server sends. */
export async function startStub(
  handle: (request: IncomingMessage, response: ServerResponse) => void | Promise<void>,
): Promise<Stub> {
  const seen = { requests: 0, paid: 0 };
  const server = createServer((request, response) => {
    seen.requests += 1;
    if (isPaid(request)) seen.paid += 1;
    Promise.resolve(handle(request, response)).catch((error: Error) => {
      response.statusCode = 500;
      response.end(error.message);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("stub has no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    seen,
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

/** A 402 carrying `paymentRequired` as its v2 header. */
export function send402(response: ServerResponse, paymentRequired: unknown): void {
  response.writeHead(402, {
    "payment-required": Buffer.from(JSON.stringify(paymentRequired)).toString("base64"),
    "content-type": "application/json",
  });
  response.end("{}");
}
