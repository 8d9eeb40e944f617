import type { RouteHandlerMethod } from "fastify";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  encodePaymentSignatureHeader,
} from "../../src/protocol/index.ts";
import { type ResourceServerOptions, startResourceServer } from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { signPayment, usdcRequirements } from "../support/payments.ts";
import { deferred, startDevnetAndFacilitator, usdcBalances, xPaymentHeader } from "./harness.ts";

let stack: Awaited<ReturnType<typeof startDevnetAndFacilitator>>;

beforeAll(async () => {
  stack = await startDevnetAndFacilitator();
});
afterAll(async () => {
  await stack?.stop();
});

const PRICE = 1000n;
const account = (index: number) => devnetAccount(stack.devnet, index);

async function serve(options: Omit<ResourceServerOptions, "facilitatorUrl">) {
  const server = await startResourceServer({ facilitatorUrl: stack.facilitator.url, ...options });
  onTestFinished(() => server.stop());
  return server;
}

/** A handler that returns only once `parties` requests are inside it: all of them have passed verify. */
function barrierHandler(parties: number): RouteHandlerMethod {
  let arrived = 0;
  const everyone = deferred();
  return async () => {
    arrived += 1;
    if (arrived === parties) everyone.resolve();
    await everyone.promise;
    return { served: true };
  };
}

function errorOf(response: Response): string | undefined {
  const header = response.headers.get("payment-required");
  return header ? decodePaymentRequiredHeader(header).error : undefined;
}

const count = <T>(values: readonly T[], value: T) => values.filter((v) => v === value).length;

describe("a payment is served at most once", () => {
  it("two servers on one facilitator, both past verify with the same payment: one 200, one transfer", async () => {
    const [payer, payee] = [account(0), account(1)];
    const handler = barrierHandler(2);
    const routes = { "GET /weather": { price: PRICE, payTo: payee.address } };
    const servers = [
      await serve({ routes, handlers: { "GET /weather": handler } }),
      await serve({ routes, handlers: { "GET /weather": handler } }),
    ];
    const header = encodePaymentSignatureHeader(
      signPayment(payer.privateKey, usdcRequirements(payee.address, PRICE)),
    );
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const responses = await Promise.all(
      servers.map((server) => fetch(`${server.url}/weather`, { headers: { "payment-signature": header } })),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 402]);
    const refused = responses.find((r) => r.status === 402);
    if (!refused) throw new Error("no refusal");
    expect(errorOf(refused)).toBe("invalid_exact_evm_nonce_already_used");
    expect(decodePaymentResponseHeader(refused.headers.get("payment-response") ?? "")).toMatchObject({
      success: false,
    });
    expect(await refused.text()).not.toContain("served");
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("two servers racing freely on five payments: one 200 and one transfer per payment", async () => {
    const [payer, payee] = [account(2), account(3)];
    const routes = { "GET /weather": { price: PRICE, payTo: payee.address } };
    const servers = [await serve({ routes }), await serve({ routes })];
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const rounds = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const header = encodePaymentSignatureHeader(
          signPayment(payer.privateKey, usdcRequirements(payee.address, PRICE)),
        );
        const responses = await Promise.all(
          servers.map((server) =>
            fetch(`${server.url}/weather`, { headers: { "payment-signature": header } }),
          ),
        );
        return responses.map((r) => r.status);
      }),
    );
    for (const statuses of rounds) expect(statuses.sort()).toEqual([200, 402]);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - 5n * PRICE,
      before[1] + 5n * PRICE,
    ]);
  });

  it("the same payment twenty times at once at one server: one 200, nineteen refusals, one transfer", async () => {
    const [payer, payee] = [account(4), account(5)];
    let served = 0;
    const server = await serve({
      routes: { "GET /weather": { price: PRICE, payTo: payee.address } },
      handlers: {
        "GET /weather": async () => {
          served += 1;
          return { served: true };
        },
      },
    });
    const header = encodePaymentSignatureHeader(
      signPayment(payer.privateKey, usdcRequirements(payee.address, PRICE)),
    );
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${server.url}/weather`, { headers: { "payment-signature": header } }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(count(statuses, 200)).toBe(1);
    expect(count(statuses, 402)).toBe(19);
    for (const refused of responses.filter((r) => r.status === 402)) {
      expect(errorOf(refused)).toBe("invalid_exact_evm_nonce_already_used");
    }
    expect(served).toBe(1);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("one authorization presented as v2 and as v1 at once is one payment", async () => {
    const [payer, payee] = [account(6), account(7)];
    const server = await serve({
      acceptV1: true,
      routes: { "GET /weather": { price: PRICE, payTo: payee.address } },
      handlers: { "GET /weather": barrierHandler(2) },
    });
    const sign = () => signPayment(payer.privateKey, usdcRequirements(payee.address, PRICE));
    const get = (headers: Record<string, string>) => fetch(`${server.url}/weather`, { headers });
    const payment = sign();
    const before = await usdcBalances(stack.devnet, [payer.address, payee.address]);

    const presentations = [
      get({ "payment-signature": encodePaymentSignatureHeader(payment) }),
      get({
        "x-payment": xPaymentHeader(payment),
      }),
    ];
    // Whichever claimed the payment waits in the barrier, so the first answer is the other one's refusal.
    const refused = await Promise.race(presentations);
    expect(refused.status).toBe(402);
    expect(errorOf(refused)).toBe("invalid_exact_evm_nonce_already_used");
    // A different payment joins the barrier and lets the claimant through.
    const statuses = (
      await Promise.all([
        ...presentations,
        get({ "payment-signature": encodePaymentSignatureHeader(sign()) }),
      ])
    ).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 200, 402]);
    expect(await usdcBalances(stack.devnet, [payer.address, payee.address])).toEqual([
      before[0] - 2n * PRICE,
      before[1] + 2n * PRICE,
    ]);
  });
});
