import { once } from "node:events";
import { createServer, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { UptoEvmScheme } from "@x402/evm/upto/server";
import { paymentMiddleware, setSettlementOverrides } from "@x402/express";
import express from "express";
import type { Address } from "viem";
import { BASE_NETWORK, USDC_ADDRESS, USDC_NAME, USDC_VERSION } from "../../src/chain/index.ts";

/**
 * A resource server as a user of the official packages writes it: `@x402/express`'s `paymentMiddleware`
 * selling GET /weather for $0.001, verifying and settling through `facilitatorUrl`.
 */
export async function startOfficialServer(
  facilitatorUrl: string,
  payTo: Address,
): Promise<{ url: string; stop(): Promise<void> }> {
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl })).register(
    BASE_NETWORK,
    new ExactEvmScheme(),
  );
  const app = express();
  app.use(
    paymentMiddleware(
      {
        "GET /weather": {
          accepts: { scheme: "exact", network: BASE_NETWORK, payTo, price: "$0.001" },
          description: "Weather",
        },
      },
      resourceServer,
    ),
  );
  app.get("/weather", (_request, response) => {
    response.json({ sunny: true });
  });
  return listen(app);
}

/**
 * Serves `app` (an express app, or a node http server) on a free loopback port until `stop()`, which also
 * ends kept-alive connections.
 */
export async function listen(app: express.Express | Server): Promise<{ url: string; stop(): Promise<void> }> {
  const listener = app instanceof Server ? app : createServer(app);
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const { port } = listener.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      listener.closeAllConnections();
      listener.close();
      await once(listener, "close");
    },
  };
}

/**
 * The official server selling the Permit2 paths as its README shows them: `exact` by Permit2 at 1,000 and
 * `upto` up to 2,000, whose handler meters 1,500 through `setSettlementOverrides`.
 */
export async function startOfficialPermit2Server(
  facilitatorUrl: string,
  payTo: Address,
): Promise<{ url: string; stop(): Promise<void> }> {
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl }))
    .register(BASE_NETWORK, new ExactEvmScheme())
    .register(BASE_NETWORK, new UptoEvmScheme());
  const asset = USDC_ADDRESS;
  const domain = { name: USDC_NAME, version: USDC_VERSION };
  const app = express();
  app.use(
    paymentMiddleware(
      {
        "GET /exact/evm/permit2": {
          accepts: {
            scheme: "exact",
            network: BASE_NETWORK,
            payTo,
            price: { amount: "1000", asset, extra: { ...domain, assetTransferMethod: "permit2" } },
          },
          description: "exact by Permit2",
        },
        "GET /upto/evm/permit2": {
          accepts: {
            scheme: "upto",
            network: BASE_NETWORK,
            payTo,
            price: { amount: "2000", asset, extra: domain },
          },
          description: "metered",
        },
      },
      resourceServer,
    ),
  );
  app.get("/exact/evm/permit2", (_request, response) => {
    response.json({ paid: true });
  });
  app.get("/upto/evm/permit2", (_request, response) => {
    setSettlementOverrides(response, { amount: "1500" });
    response.json({ tokens: 150 });
  });
  return listen(app);
}

/** Where both servers sell `batch-settlement` funded by EIP-3009 deposits, as x402's end-to-end suite names it. */
export const BATCH_EIP3009_PATH = "/batch-settlement/evm/eip3009";

/**
 * The official server selling GET /batch-settlement/evm/eip3009 for $0.001 by `batch-settlement`, as the
 * SDK's README wires it: `BatchSettlementEvmScheme` with its in-memory channel storage and default
 * settings (withdrawal delay 900 s, minDeposit 10 × the price, vouchers checked locally while the mirrored
 * on-chain state is fresh), the receiver authorizer taken from the facilitator's `/supported`. No channel
 * manager runs: the benchmarks measure payments, not claims.
 */
export async function startOfficialBatchServer(
  facilitatorUrl: string,
  payTo: Address,
): Promise<{ url: string; stop(): Promise<void> }> {
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitatorUrl })).register(
    BASE_NETWORK,
    new BatchSettlementEvmScheme(payTo),
  );
  // Reads /supported now, so a facilitator without a receiver authorizer fails here, not at the first request.
  await resourceServer.initialize();
  const app = express();
  app.use(
    paymentMiddleware(
      {
        [`GET ${BATCH_EIP3009_PATH}`]: {
          accepts: { scheme: "batch-settlement", network: BASE_NETWORK, payTo, price: "$0.001" },
          description: "batch-settlement, EIP-3009 deposits",
        },
      },
      resourceServer,
    ),
  );
  app.get(BATCH_EIP3009_PATH, (_request, response) => {
    response.json({ paid: true });
  });
  return listen(app);
}
