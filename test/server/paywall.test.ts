import { decodePaymentRequiredHeader as officialDecodePaymentRequired } from "@x402/core/http";
import Fastify, { type FastifyInstance } from "fastify";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type Devnet, mockUsdcAbi, USDC_ADDRESS } from "../../src/chain/index.ts";
import type { Facilitator } from "../../src/facilitator/index.ts";
import {
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodeXPaymentResponseHeader,
  encodePaymentSignatureHeader,
  type PaymentRequirements,
} from "../../src/protocol/index.ts";
import {
  type PaywallOptions,
  type ResourceServerOptions,
  startResourceServer,
  x402Paywall,
} from "../../src/server/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { type SignOptions, signPayment, usdcRequirements } from "../support/payments.ts";
import {
  closedPort,
  deferred,
  startDevnetAndFacilitator,
  startScriptedFacilitator,
  usdcBalances,
  xPaymentHeader,
} from "./harness.ts";

let stack: Awaited<ReturnType<typeof startDevnetAndFacilitator>>;
let devnet: Devnet;
let facilitator: Facilitator;

beforeAll(async () => {
  stack = await startDevnetAndFacilitator();
  devnet = stack.devnet;
  facilitator = stack.facilitator;
});
afterAll(async () => {
  await stack?.stop();
});

const PRICE = 1000n;
const account = (index: number) => devnetAccount(devnet, index);

async function serve(options: Omit<ResourceServerOptions, "facilitatorUrl"> & { facilitatorUrl?: string }) {
  const server = await startResourceServer({ facilitatorUrl: facilitator.url, ...options });
  onTestFinished(() => server.stop());
  return server;
}

/** GET /weather for PRICE, with a handler that counts how often it ran (it must not, unpaid). */
async function serveCountingWeather() {
  let runs = 0;
  const server = await serve({
    routes: { "GET /weather": { price: PRICE, payTo: account(1).address } },
    handlers: {
      "GET /weather": async () => {
        runs += 1;
        return {};
      },
    },
  });
  return { url: `${server.url}/weather`, ran: () => runs };
}

/** An app with a free route beside the paid ones, to show the plugin leaves other routes alone. */
async function serveApp(
  options: Omit<PaywallOptions, "facilitatorUrl"> & { facilitatorUrl?: string },
  addRoutes: (app: FastifyInstance) => void,
) {
  const app = Fastify();
  onTestFinished(() => app.close());
  await app.register(x402Paywall, { facilitatorUrl: facilitator.url, ...options });
  addRoutes(app);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  if (typeof address !== "object" || !address) throw new Error("no address");
  return `http://127.0.0.1:${address.port}`;
}

/** What an x402 client does first: ask, and read the requirements from the 402. */
async function requirementsOf(url: string): Promise<PaymentRequirements> {
  const response = await fetch(url);
  expect(response.status).toBe(402);
  const header = response.headers.get("payment-required");
  if (!header) throw new Error("no PAYMENT-REQUIRED header");
  const [requirements] = decodePaymentRequiredHeader(header).accepts;
  if (!requirements) throw new Error("no accepts");
  return requirements;
}

function paymentHeader(payerIndex: number, requirements: PaymentRequirements, options?: SignOptions): string {
  return encodePaymentSignatureHeader(signPayment(account(payerIndex).privateKey, requirements, options));
}

const pay = (url: string, header: string, name = "payment-signature") =>
  fetch(url, { headers: { [name]: header } });

function errorOf(response: Response): string | undefined {
  const header = response.headers.get("payment-required");
  return header ? decodePaymentRequiredHeader(header).error : undefined;
}

describe("unpaid and malformed requests", () => {
  it("answers an unpaid request with a 402 the official decoder reads, and never runs the handler", async () => {
    const payee = account(1).address;
    let ran = 0;
    const url = await serveApp(
      {
        routes: {
          "GET /weather": {
            price: "$0.001",
            payTo: payee,
            description: "Weather",
            mimeType: "application/json",
          },
        },
      },
      (app) => {
        app.get("/weather", async () => {
          ran += 1;
          return { sunny: true };
        });
        app.get("/free", async () => ({ free: true }));
      },
    );
    const response = await fetch(`${url}/weather?city=lisbon`);
    expect(response.status).toBe(402);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const expected = {
      x402Version: 2,
      error: "Payment required",
      resource: { url: `${url}/weather?city=lisbon`, description: "Weather", mimeType: "application/json" },
      accepts: [
        {
          scheme: "exact",
          network: "eip155:8453",
          asset: USDC_ADDRESS,
          amount: "1000",
          payTo: payee,
          maxTimeoutSeconds: 300,
          extra: { name: "USD Coin", version: "2" },
        },
      ],
      extensions: {},
    };
    expect(officialDecodePaymentRequired(response.headers.get("payment-required") ?? "")).toEqual(expected);
    expect(await response.json()).toEqual(expected);

    expect((await fetch(`${url}/weather`, { method: "HEAD" })).status).toBe(402);
    const free = await fetch(`${url}/free`);
    expect(free.status).toBe(200);
    expect(free.headers.get("payment-required")).toBeNull();
    expect(ran).toBe(0);
  });

  it("refuses a malformed payment header with 400 and the reason", async () => {
    const { url, ran } = await serveCountingWeather();
    const requirements = await requirementsOf(url);
    const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64");

    const notBase64 = await pay(url, "not base64!");
    expect(notBase64.status).toBe(400);
    expect(await notBase64.json()).toMatchObject({
      error: "invalid_payload",
      details: { reason: "not_base64" },
    });

    const notAPayload = await pay(url, json({ x402Version: 2, accepted: requirements }));
    expect(notAPayload.status).toBe(400);
    expect(await notAPayload.json()).toMatchObject({
      error: "invalid_payload",
      details: { reason: "schema" },
    });

    const v1InV2Header = await pay(
      url,
      json({ x402Version: 1, scheme: "exact", network: "base", payload: {} }),
    );
    expect(await v1InV2Header.json()).toMatchObject({ error: "invalid_x402_version" });

    const payment = signPayment(account(0).privateKey, requirements);
    const noAuthorization = await pay(
      url,
      json({ ...payment, payload: { signature: payment.payload.signature } }),
    );
    expect(noAuthorization.status).toBe(400);
    expect(await noAuthorization.json()).toMatchObject({
      error: "invalid_payload",
      details: { field: "authorization" },
    });
    expect(ran()).toBe(0);
  });

  it("refuses a payment for another amount or payee before asking the facilitator", async () => {
    const [payer, payee, other] = [account(0), account(1), account(2)];
    const server = await serve({ routes: { "GET /weather": { price: PRICE, payTo: payee.address } } });
    const url = `${server.url}/weather`;
    const before = await usdcBalances(devnet, [payer.address, payee.address, other.address]);

    for (const requirements of [
      usdcRequirements(payee.address, PRICE - 1n),
      usdcRequirements(other.address, PRICE),
    ]) {
      const response = await pay(url, paymentHeader(0, requirements));
      expect(response.status).toBe(402);
      expect(errorOf(response)).toBe("No matching payment requirements");
    }
    expect(await usdcBalances(devnet, [payer.address, payee.address, other.address])).toEqual(before);
  });

  it("passes the facilitator's verdict on an invalid payment back in the 402", async () => {
    const { url, ran } = await serveCountingWeather();
    // `accepted` matches the offer, but the signed authorization moves 1 unit instead of 1000.
    const response = await pay(
      url,
      paymentHeader(0, await requirementsOf(url), { authorization: { value: "1" } }),
    );
    expect(response.status).toBe(402);
    expect(errorOf(response)).toBe("invalid_exact_evm_payload_authorization_value_mismatch");
    expect(response.headers.get("server-timing")).toMatch(/^verify;dur=\d+\.\d$/);
    expect(response.headers.get("payment-response")).toBeNull();
    expect(ran()).toBe(0);
  });
});

describe("paid requests", () => {
  it("serves a paid request once, with its receipt and phase timings, and moves exactly the price", async () => {
    const [payer, payee] = [account(0), account(1)];
    const server = await serve({ routes: { "GET /weather": { price: "$0.001", payTo: payee.address } } });
    const url = `${server.url}/weather`;
    const header = paymentHeader(0, await requirementsOf(url));
    const before = await usdcBalances(devnet, [payer.address, payee.address]);

    const response = await pay(url, header);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ location: "Base", paid: true });
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({
      success: true,
      network: "eip155:8453",
      payer: payer.address.toLowerCase(),
    });
    expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(response.headers.get("cache-control")).toBe("private");
    expect(response.headers.get("server-timing")).toMatch(/^verify;dur=\d+\.\d, settle;dur=\d+\.\d$/);
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);

    const replay = await pay(url, header);
    expect(replay.status).toBe(402);
    expect(errorOf(replay)).toBe("invalid_exact_evm_nonce_already_used");
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("charges nothing when the handler fails, and the authorization stays usable", async () => {
    const [payer, payee] = [account(0), account(1)];
    const server = await serve({
      routes: {
        "GET /flaky": { price: PRICE, payTo: payee.address },
        "GET /report": { price: PRICE, payTo: payee.address },
      },
      handlers: { "GET /flaky": async (_request, reply) => reply.code(500).send({ oops: "upstream down" }) },
    });
    const header = paymentHeader(0, await requirementsOf(`${server.url}/flaky`));
    const before = await usdcBalances(devnet, [payer.address, payee.address]);

    const failed = await pay(`${server.url}/flaky`, header);
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ oops: "upstream down" });
    expect(failed.headers.get("payment-response")).toBeNull();
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual(before);

    // Same price and payee, so the same authorization pays for the other route.
    const served = await pay(`${server.url}/report`, header);
    expect(served.status).toBe(200);
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("withholds the handler's response, headers included, when settlement fails", async () => {
    const [payer, payee, sink] = [account(3), account(1), account(2)];
    const server = await serve({
      routes: { "GET /secret": { price: PRICE, payTo: payee.address } },
      handlers: {
        "GET /secret": async (_request, reply) => {
          // The payer empties its wallet between verify and settle.
          const [balance] = await usdcBalances(devnet, [payer.address]);
          const hash = await devnet.client.writeContract({
            account: privateKeyToAccount(payer.privateKey),
            address: USDC_ADDRESS,
            abi: mockUsdcAbi,
            functionName: "transfer",
            args: [sink.address, balance],
          });
          await devnet.client.waitForTransactionReceipt({ hash });
          reply.header("x-session", "paid-access-token");
          return { secret: "the goods" };
        },
      },
    });
    const url = `${server.url}/secret`;
    const header = paymentHeader(3, await requirementsOf(url));
    const [payeeBefore] = await usdcBalances(devnet, [payee.address]);

    const response = await pay(url, header);
    expect(response.status).toBe(402);
    expect(response.headers.get("x-session")).toBeNull();
    const body = await response.text();
    expect(body).not.toContain("the goods");
    const receipt = decodePaymentResponseHeader(response.headers.get("payment-response") ?? "");
    expect(receipt).toMatchObject({ success: false, errorReason: "invalid_exact_evm_insufficient_balance" });
    expect(JSON.parse(body)).toMatchObject({
      x402Version: 2,
      error: "invalid_exact_evm_insufficient_balance",
    });
    expect(response.headers.get("server-timing")).toMatch(/^verify;dur=\d+\.\d, settle;dur=\d+\.\d$/);
    expect((await usdcBalances(devnet, [payee.address]))[0]).toBe(payeeBefore);
  });

  it("upfront: settles before the handler runs, and the receipt stands when the handler fails", async () => {
    const [payer, payee] = [account(0), account(4)];
    const payeeBalance = async () => (await usdcBalances(devnet, [payee.address]))[0];
    let seenByHandler: bigint | undefined;
    const server = await serve({
      routes: {
        "GET /upfront": { price: PRICE, payTo: payee.address, flow: "upfront" },
        "GET /upfront-broken": { price: PRICE, payTo: payee.address, flow: "upfront" },
      },
      handlers: {
        "GET /upfront": async () => {
          seenByHandler = await payeeBalance();
          return { served: true };
        },
        "GET /upfront-broken": async (_request, reply) => reply.code(503).send({ down: true }),
      },
    });
    const requirements = await requirementsOf(`${server.url}/upfront`);
    expect(requirements.extra).toEqual({ name: "USD Coin", version: "2", paymentFlow: "upfront" });
    const before = await usdcBalances(devnet, [payer.address, payee.address]);

    const response = await pay(`${server.url}/upfront`, paymentHeader(0, requirements));
    expect(response.status).toBe(200);
    expect(seenByHandler).toBe(before[1] + PRICE);
    expect(decodePaymentResponseHeader(response.headers.get("payment-response") ?? "")).toMatchObject({
      success: true,
    });
    expect(response.headers.get("server-timing")).toMatch(/^settle;dur=\d+\.\d$/);

    const broken = await pay(`${server.url}/upfront-broken`, paymentHeader(0, requirements));
    expect(broken.status).toBe(503);
    expect(decodePaymentResponseHeader(broken.headers.get("payment-response") ?? "")).toMatchObject({
      success: true,
    });
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - 2n * PRICE,
      before[1] + 2n * PRICE,
    ]);
  });

  it("v1: answers legacy clients in the 402 body, and settles an X-PAYMENT with an X-PAYMENT-RESPONSE", async () => {
    const [payer, payee] = [account(0), account(1)];
    const server = await serve({
      acceptV1: true,
      routes: { "GET /weather": { price: PRICE, payTo: payee.address } },
    });
    const url = `${server.url}/weather`;
    const unpaid = await fetch(url);
    expect(unpaid.status).toBe(402);
    expect(await unpaid.json()).toEqual({
      x402Version: 1,
      error: "Payment required",
      accepts: [
        {
          scheme: "exact",
          network: "base",
          maxAmountRequired: "1000",
          resource: url,
          description: "",
          mimeType: "",
          outputSchema: {},
          payTo: payee.address,
          maxTimeoutSeconds: 300,
          asset: USDC_ADDRESS,
          extra: { name: "USD Coin", version: "2" },
        },
      ],
    });
    // v2 clients still find their header on the same 402.
    expect(decodePaymentRequiredHeader(unpaid.headers.get("payment-required") ?? "").accepts[0]?.amount).toBe(
      "1000",
    );

    const signed = signPayment(payer.privateKey, usdcRequirements(payee.address, PRICE));
    const header = xPaymentHeader(signed);
    const before = await usdcBalances(devnet, [payer.address, payee.address]);
    const response = await pay(url, header, "x-payment");
    expect(response.status).toBe(200);
    expect(response.headers.get("payment-response")).toBeNull();
    const receipt = decodeXPaymentResponseHeader(response.headers.get("x-payment-response") ?? "");
    expect(receipt).toMatchObject({ success: true, network: "base" });
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);

    const replayAsV1 = await pay(url, header, "x-payment");
    expect(replayAsV1.status).toBe(402);
    expect(await replayAsV1.json()).toMatchObject({
      x402Version: 1,
      error: "invalid_exact_evm_nonce_already_used",
    });
  });

  it("ignores X-PAYMENT unless v1 is accepted", async () => {
    const server = await serve({ routes: { "GET /weather": { price: PRICE, payTo: account(1).address } } });
    const signed = signPayment(account(0).privateKey, usdcRequirements(account(1).address, PRICE));
    const header = xPaymentHeader(signed);
    const response = await pay(`${server.url}/weather`, header, "x-payment");
    expect(response.status).toBe(402);
    expect(errorOf(response)).toBe("Payment required");
  });

  it("prices a marketplace route per seller, and a payment for one seller does not buy another's", async () => {
    const [alice, bob] = [account(5).address, account(6).address];
    const sellers: Record<string, Hex> = { alice, bob };
    const server = await serve({
      routes: {
        "GET /market/:seller": {
          price: "$0.002",
          payTo: (request) => {
            const seller = sellers[(request.params as { seller: string }).seller];
            if (!seller) throw new Error("unknown seller");
            return seller;
          },
        },
      },
    });
    expect(server.routes).toEqual([
      {
        method: "GET",
        path: "/market/:seller",
        price: "2000",
        payTo: "dynamic",
        scheme: "exact",
        assetTransferMethod: "eip3009",
        asset: USDC_ADDRESS,
      },
    ]);
    const forAlice = await requirementsOf(`${server.url}/market/alice`);
    expect(forAlice.payTo).toBe(alice);
    expect((await requirementsOf(`${server.url}/market/bob`)).payTo).toBe(bob);

    const header = paymentHeader(0, forAlice);
    const before = await usdcBalances(devnet, [alice, bob]);
    const atBob = await pay(`${server.url}/market/bob`, header);
    expect(atBob.status).toBe(402);
    expect(errorOf(atBob)).toBe("No matching payment requirements");
    const atAlice = await pay(`${server.url}/market/alice`, header);
    expect(atAlice.status).toBe(200);
    expect(await usdcBalances(devnet, [alice, bob])).toEqual([before[0] + 2000n, before[1]]);
  });

  it("does not settle for a client that hung up before the response", async () => {
    const payee = account(1);
    const handlerRunning = deferred();
    const decided = deferred();
    const scripted = await startScriptedFacilitator(facilitator.url, (_call, body, forward) =>
      forward("/settle", body),
    );
    onTestFinished(() => scripted.app.close());
    const url = await serveApp(
      {
        facilitatorUrl: scripted.url,
        routes: {
          "GET /slow": { price: PRICE, payTo: payee.address },
          "GET /fast": { price: PRICE, payTo: payee.address },
        },
      },
      (app) => {
        app.get("/slow", async (request) => {
          const gone = new Promise((resolve) => request.raw.socket.once("close", resolve));
          handlerRunning.resolve();
          await gone;
          return { late: true };
        });
        app.get("/fast", async () => ({ fast: true }));
        // Registered after the paywall, so it runs once the paywall's onSend has decided the paid request.
        app.addHook("onSend", async (request, _reply, payload) => {
          if (request.url === "/slow" && request.headers["payment-signature"]) decided.resolve();
          return payload;
        });
      },
    );
    const header = paymentHeader(0, await requirementsOf(`${url}/slow`));
    const before = await usdcBalances(devnet, [payee.address]);
    const aborted = new AbortController();
    const request = fetch(`${url}/slow`, {
      headers: { "payment-signature": header },
      signal: aborted.signal,
    });
    await handlerRunning.promise;
    aborted.abort();
    await expect(request).rejects.toThrow();
    await decided.promise;
    expect(scripted.settleCalls()).toBe(0);
    expect(await usdcBalances(devnet, [payee.address])).toEqual(before);

    const served = await pay(`${url}/fast`, header);
    expect(served.status).toBe(200);
    expect(scripted.settleCalls()).toBe(1);
  });
});

describe("facilitator failures", () => {
  it("answers 502 when the facilitator is unreachable, without running the handler or charging", async () => {
    const [payer, payee] = [account(0), account(1)];
    let ran = 0;
    const handler = async () => {
      ran += 1;
      return {};
    };
    const server = await serve({
      facilitatorUrl: `http://127.0.0.1:${await closedPort()}`,
      routes: {
        "GET /weather": { price: PRICE, payTo: payee.address },
        "GET /upfront": { price: PRICE, payTo: payee.address, flow: "upfront" },
      },
      handlers: { "GET /weather": handler, "GET /upfront": handler },
    });
    const before = await usdcBalances(devnet, [payer.address, payee.address]);

    const response = await pay(
      `${server.url}/weather`,
      paymentHeader(0, await requirementsOf(`${server.url}/weather`)),
    );
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      error: "unexpected_verify_error",
      details: { reason: "unreachable" },
    });

    const upfront = await pay(
      `${server.url}/upfront`,
      paymentHeader(0, await requirementsOf(`${server.url}/upfront`)),
    );
    expect(upfront.status).toBe(502);
    expect(await upfront.json()).toMatchObject({
      error: "unexpected_settle_error",
      details: { reason: "unreachable" },
    });

    expect(ran).toBe(0);
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual(before);
  });

  const secretHandler = { "GET /secret": async () => ({ secret: "the goods" }) };

  it.each([
    ["a 5xx, twice", { status: 500, text: '{"error":"boom"}' }, "bad_status", 2],
    ["malformed JSON", { status: 200, text: "{not json" }, "bad_response", 1],
    ["a body that is not a settle response", { status: 200, text: '{"ok":true}' }, "bad_response", 1],
  ])(
    "answers 502 and withholds the handler's output when settle gets %s",
    async (_name, answer, reason, calls) => {
      const scripted = await startScriptedFacilitator(facilitator.url, async () => answer);
      onTestFinished(() => scripted.app.close());
      const server = await serve({
        facilitatorUrl: scripted.url,
        routes: { "GET /secret": { price: PRICE, payTo: account(1).address } },
        handlers: secretHandler,
      });
      const response = await pay(
        `${server.url}/secret`,
        paymentHeader(0, await requirementsOf(`${server.url}/secret`)),
      );
      expect(response.status).toBe(502);
      const body = await response.text();
      expect(body).not.toContain("the goods");
      expect(JSON.parse(body)).toMatchObject({ error: "unexpected_settle_error", details: { reason } });
      expect(response.headers.get("payment-response")).toBeNull();
      expect(scripted.settleCalls()).toBe(calls);
    },
  );

  it("answers 502 when settle times out, after one retry", async () => {
    const release = deferred<{ status: number; text: string }>();
    // Verify answers at once, so that only settle can run into the timeout.
    const scripted = await startScriptedFacilitator(facilitator.url, () => release.promise, {
      verifyAnswer: { status: 200, text: '{"isValid":true}' },
    });
    onTestFinished(async () => {
      release.resolve({ status: 500, text: "" });
      await scripted.app.close();
    });
    const server = await serve({
      facilitatorUrl: scripted.url,
      facilitatorTimeoutMs: 300,
      routes: { "GET /secret": { price: PRICE, payTo: account(1).address } },
      handlers: secretHandler,
    });
    const response = await pay(
      `${server.url}/secret`,
      paymentHeader(0, await requirementsOf(`${server.url}/secret`)),
    );
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      error: "unexpected_settle_error",
      details: { reason: "timeout" },
    });
    expect(scripted.settleCalls()).toBe(2);
  });

  it("retries a settle whose answer was lost, and takes the facilitator's duplicate of its own settle as paid", async () => {
    const [payer, payee] = [account(0), account(1)];
    const scripted = await startScriptedFacilitator(facilitator.url, async (call, body, forward) => {
      const answer = await forward("/settle", body);
      return call === 1 ? { status: 503, text: "lost" } : answer;
    });
    onTestFinished(() => scripted.app.close());
    const server = await serve({
      facilitatorUrl: scripted.url,
      routes: { "GET /weather": { price: PRICE, payTo: payee.address } },
    });
    const before = await usdcBalances(devnet, [payer.address, payee.address]);
    const response = await pay(
      `${server.url}/weather`,
      paymentHeader(0, await requirementsOf(`${server.url}/weather`)),
    );
    expect(response.status).toBe(200);
    expect(decodePaymentResponseHeader(response.headers.get("payment-response") ?? "")).toMatchObject({
      success: true,
      extra: { duplicate: true },
    });
    expect(scripted.settleCalls()).toBe(2);
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual([
      before[0] - PRICE,
      before[1] + PRICE,
    ]);
  });

  it("retries settlement_pending once", async () => {
    const pendingAnswer = {
      success: false,
      errorReason: "settlement_pending",
      transaction: `0x${"ab".repeat(32)}`,
      network: "eip155:8453",
    };
    const scripted = await startScriptedFacilitator(facilitator.url, async (call, body, forward) =>
      call === 1 ? { status: 200, text: JSON.stringify(pendingAnswer) } : forward("/settle", body),
    );
    onTestFinished(() => scripted.app.close());
    const server = await serve({
      facilitatorUrl: scripted.url,
      routes: { "GET /weather": { price: PRICE, payTo: account(1).address } },
    });
    const response = await pay(
      `${server.url}/weather`,
      paymentHeader(0, await requirementsOf(`${server.url}/weather`)),
    );
    expect(response.status).toBe(200);
    expect(scripted.settleCalls()).toBe(2);
  });

  it("settles a payment whose outcome it never learned on its next presentation, and serves it once", async () => {
    const [payer, payee] = [account(0), account(1)];
    let answersLost = true;
    const scripted = await startScriptedFacilitator(facilitator.url, async (_call, body, forward) => {
      const answer = await forward("/settle", body);
      return answersLost ? { status: 502, text: "gateway" } : answer;
    });
    onTestFinished(() => scripted.app.close());
    const server = await serve({
      facilitatorUrl: scripted.url,
      routes: { "GET /weather": { price: PRICE, payTo: payee.address } },
    });
    const url = `${server.url}/weather`;
    const header = paymentHeader(0, await requirementsOf(url));
    const before = await usdcBalances(devnet, [payer.address, payee.address]);
    const charged = [before[0] - PRICE, before[1] + PRICE];

    const lost = await pay(url, header);
    expect(lost.status).toBe(502);
    // The money moved although the server never heard so.
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual(charged);

    answersLost = false;
    const retried = await pay(url, header);
    expect(retried.status).toBe(200);
    expect(decodePaymentResponseHeader(retried.headers.get("payment-response") ?? "")).toMatchObject({
      success: true,
    });
    expect(retried.headers.get("server-timing")).toMatch(/^settle;dur=/);

    const replay = await pay(url, header);
    expect(replay.status).toBe(402);
    expect(errorOf(replay)).toBe("invalid_exact_evm_nonce_already_used");
    expect(await usdcBalances(devnet, [payer.address, payee.address])).toEqual(charged);
  });
});
