import Fastify from "fastify";
import { onTestFinished } from "vitest";
import {
  encodePaymentResponseHeader,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
} from "../../src/protocol/index.ts";

/**
 * A server that lies: it asks for payment as `realServer` does (its own 402), then answers every paid
 * request 200 with a receipt naming a transaction, without ever settling. Closed when the test ends.
 * Resolves to its origin.
 */
export async function startUnsettlingServer(realServer: string): Promise<string> {
  const challenge = await fetch(`${realServer}/weather`);
  const paymentRequired = challenge.headers.get(PAYMENT_REQUIRED_HEADER) ?? "";
  const app = Fastify();
  app.get("/weather", async (request, reply) => {
    if (!request.headers["payment-signature"]) {
      return reply.code(402).header(PAYMENT_REQUIRED_HEADER, paymentRequired).send({});
    }
    const receipt = encodePaymentResponseHeader({
      success: true,
      transaction: `0x${"ab".repeat(32)}`,
      network: "eip155:8453",
      payer: "0x0000000000000000000000000000000000000001",
    });
    return reply.header(PAYMENT_RESPONSE_HEADER, receipt).send({ sunny: true });
  });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  onTestFinished(() => app.close());
  return url;
}
