import getPort from "get-port";
import { erc20Abi, type Hex } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import type {
  PaymentPayload,
  PaymentRequirements,
  SettleResponse,
  VerifyResponse,
} from "../../src/protocol/index.ts";
import { signPayment, usdcRequirements } from "../support/payments.ts";

let devnet: Devnet;
let facilitator: Facilitator;

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 8 });
  facilitator = await startFacilitator({
    exact: {
      rpcUrl: devnet.rpcUrl,
      chainId: devnet.chainId,
      relayerKeys: [devnet.accounts[7]?.privateKey as Hex],
    },
  });
});
afterAll(async () => {
  await facilitator?.stop();
  await devnet?.stop();
});

async function post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${facilitator.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

const request = (paymentPayload: PaymentPayload, paymentRequirements: PaymentRequirements) => ({
  x402Version: 2,
  paymentPayload,
  paymentRequirements,
});

const balances = (addresses: readonly Hex[]) =>
  devnet.client.multicall({
    allowFailure: false,
    contracts: addresses.map(
      (a) => ({ address: USDC_ADDRESS, abi: erc20Abi, functionName: "balanceOf", args: [a] }) as const,
    ),
  });

describe("reference facilitator", () => {
  it("lists exact on eip155:8453 (v2) and base (v1), with its relayers", async () => {
    const response = await fetch(`${facilitator.url}/supported`);
    const supported = await response.json();
    expect(supported).toEqual({
      kinds: [
        { x402Version: 2, scheme: "exact", network: "eip155:8453" },
        { x402Version: 1, scheme: "exact", network: "base" },
      ],
      extensions: [],
      signers: { "eip155:*": [devnet.accounts[7]?.address] },
    });
  });

  it("verifies, settles once, and answers a repeat with the first transaction", async () => {
    const [payer, payee] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 12_345n);
    const payment = signPayment(payer.privateKey, requirements);
    const [payerBefore, payeeBefore] = await balances([payer.address, payee.address]);

    const verified = await post<VerifyResponse>("/verify", request(payment, requirements));
    expect(verified).toEqual({ status: 200, body: { isValid: true, payer: payer.address.toLowerCase() } });

    const settled = await post<SettleResponse>("/settle", request(payment, requirements));
    expect(settled.status).toBe(200);
    expect(settled.body, JSON.stringify(settled.body)).toMatchObject({
      success: true,
      network: "eip155:8453",
      amount: "12345",
    });
    expect(settled.body.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await balances([payer.address, payee.address])).toEqual([
      (payerBefore as bigint) - 12_345n,
      (payeeBefore as bigint) + 12_345n,
    ]);

    const again = await post<SettleResponse>("/settle", request(payment, requirements));
    expect(again.body).toMatchObject({
      success: true,
      transaction: settled.body.transaction,
      extra: { duplicate: true },
    });
    const reverified = await post<VerifyResponse>("/verify", request(payment, requirements));
    expect(reverified.body).toMatchObject({
      isValid: false,
      invalidReason: "invalid_exact_evm_nonce_already_used",
    });
    // Money moved once.
    expect(await balances([payer.address, payee.address])).toEqual([
      (payerBefore as bigint) - 12_345n,
      (payeeBefore as bigint) + 12_345n,
    ]);
  });

  it("settles the same authorization once when 50 settles race", async () => {
    const [, , payer, payee] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 1_000n);
    const payment = signPayment(payer.privateKey, requirements);
    const [before] = await balances([payer.address]);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => post<SettleResponse>("/settle", request(payment, requirements))),
    );
    expect(results.every((r) => r.body.success)).toBe(true);
    expect(new Set(results.map((r) => r.body.transaction)).size).toBe(1);
    expect(results.filter((r) => !r.body.extra?.duplicate)).toHaveLength(1);
    expect(await balances([payer.address])).toEqual([(before as bigint) - 1_000n]);
  });

  it("batches concurrent settlements of different payers into few transactions", async () => {
    const payee = devnet.accounts[6];
    if (!payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 7n);
    const payers = devnet.accounts.slice(0, 6);
    const payments = payers.flatMap((p) => [
      signPayment(p.privateKey, requirements),
      signPayment(p.privateKey, requirements),
    ]);
    const [payeeBefore] = await balances([payee.address]);
    const results = await Promise.all(
      payments.map((p) => post<SettleResponse>("/settle", request(p, requirements))),
    );
    expect(results.map((r) => r.body.success)).toEqual(payments.map(() => true));
    expect(new Set(results.map((r) => r.body.transaction)).size).toBeLessThan(payments.length);
    expect(await balances([payee.address])).toEqual([(payeeBefore as bigint) + 7n * BigInt(payments.length)]);
  });

  it("refuses malformed requests with 400 and a reason, never 500", async () => {
    const [payer, payee] = devnet.accounts;
    if (!payer || !payee) throw new Error("accounts");
    const requirements = usdcRequirements(payee.address, 1n);
    const payment = signPayment(payer.privateKey, requirements);
    const cases: unknown[] = [
      "{not json",
      {},
      { paymentPayload: payment },
      request({ ...payment, payload: { signature: "0x12" } }, requirements),
      request({ ...payment, payload: { ...payment.payload, authorization: { value: 5 } } }, requirements),
      request(payment, { ...requirements, amount: "ten" }),
      request(payment, { ...requirements, maxTimeoutSeconds: "300" as unknown as number }),
      JSON.stringify({ pad: "x".repeat(70_000) }),
    ];
    for (const body of cases) {
      for (const path of ["/verify", "/settle"]) {
        const response = await post<{ error: string; details: unknown }>(path, body);
        expect(response.status, `${path} ${JSON.stringify(body).slice(0, 80)}`).toBe(400);
        expect(response.body.error).toMatch(/^invalid_/);
        expect(response.body.details).toBeDefined();
      }
    }
  });

  it("exposes Prometheus metrics by outcome and code", async () => {
    const text = await (await fetch(`${facilitator.url}/metrics`)).text();
    expect(text).toMatch(/x402_facilitator_requests_total\{route="settle",outcome="settled",code=""\} \d+/);
    expect(text).toMatch(
      /x402_facilitator_requests_total\{route="verify",outcome="invalid",code="invalid_exact_evm_nonce_already_used"\} 1/,
    );
    expect(text).toMatch(/x402_facilitator_request_duration_seconds_bucket/);
  });
});

describe("a chain node that cannot be reached", () => {
  it("is a 502 unexpected_verify_error, not a refused payment", async () => {
    // A port nothing listens on: the node refuses every connection.
    const unreachable = await startFacilitator({
      exact: {
        rpcUrl: `http://127.0.0.1:${await getPort({ host: "127.0.0.1" })}`,
        chainId: devnet.chainId,
        relayerKeys: [generatePrivateKey()],
      },
    });
    onTestFinished(() => unreachable.stop());
    const [payer, payee] = devnet.accounts;
    const requirements = usdcRequirements(payee?.address ?? "0x", 1_000n);
    const response = await fetch(`${unreachable.url}/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        x402Version: 2,
        paymentPayload: signPayment(payer?.privateKey ?? "0x", requirements),
        paymentRequirements: requirements,
      }),
    });
    const body = await response.clone().text();
    expect(response.status, body).toBe(502);
    expect(await response.json()).toMatchObject({
      error: "unexpected_verify_error",
      details: { message: expect.stringMatching(/^the chain's node could not be asked/) },
    });
  });
});
