import type { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import Fastify from "fastify";

type Body = { paymentPayload: PaymentPayload; paymentRequirements: PaymentRequirements };

/** What reached the facilitator: `"verify:deposit"`, `"settle:claim"`, … (endpoint and payload type). */
export type FacilitatorCall = `${"verify" | "settle"}:${string}`;

/**
 * The official `x402Facilitator` over HTTP, like `serveOfficialFacilitator`, recording every `/verify` and
 * `/settle` it answers, so a test can tell which payments never reached it.
 */
export async function serveCountingFacilitator(
  facilitator: x402Facilitator,
): Promise<{ url: string; calls: FacilitatorCall[]; stop(): Promise<void> }> {
  const calls: FacilitatorCall[] = [];
  const typeOf = (body: Body) => String((body.paymentPayload.payload as { type?: unknown }).type ?? "");
  const app = Fastify();
  app.post<{ Body: Body }>("/verify", (request) => {
    calls.push(`verify:${typeOf(request.body)}`);
    return facilitator.verify(request.body.paymentPayload, request.body.paymentRequirements);
  });
  app.post<{ Body: Body }>("/settle", (request) => {
    calls.push(`settle:${typeOf(request.body)}`);
    return facilitator.settle(request.body.paymentPayload, request.body.paymentRequirements);
  });
  app.get("/supported", () => facilitator.getSupported());
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url, calls, stop: () => app.close() };
}
