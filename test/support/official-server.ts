import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { HTTPFacilitatorClient, x402ResourceServer } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware } from "@x402/express";
import express from "express";
import type { Address } from "viem";
import { BASE_NETWORK } from "../../src/chain/index.ts";

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
  const listener = app.listen(0, "127.0.0.1");
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
