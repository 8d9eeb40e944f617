import type { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import Fastify from "fastify";

type Body = { paymentPayload: PaymentPayload; paymentRequirements: PaymentRequirements };

/**
 * The official `x402Facilitator` behind the facilitator HTTP API (`/verify`, `/settle`, `/supported`) on
 * 127.0.0.1, as the official example facilitator serves it: what a resource server reaches by URL.
 */
export async function serveOfficialFacilitator(
  facilitator: x402Facilitator,
): Promise<{ url: string; stop(): Promise<void> }> {
  const app = Fastify();
  app.post<{ Body: Body }>("/verify", (request) =>
    facilitator.verify(request.body.paymentPayload, request.body.paymentRequirements),
  );
  app.post<{ Body: Body }>("/settle", (request) =>
    facilitator.settle(request.body.paymentPayload, request.body.paymentRequirements),
  );
  app.get("/supported", () => facilitator.getSupported());
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url, stop: () => app.close() };
}
