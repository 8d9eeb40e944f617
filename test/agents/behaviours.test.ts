import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BehaviourName, behaviours, createAgent } from "../../src/agents/index.ts";
import { type CountingServer, type PaymentStack, startPaymentStack } from "./harness.ts";

const PRICE = 1000n;

let stack: PaymentStack;
let server: CountingServer;

beforeAll(async () => {
  stack = await startPaymentStack();
  server = await stack.serve({
    acceptV1: true,
    routes: { "GET /weather": { price: "$0.001", payTo: stack.payee.address } },
  });
});
afterAll(async () => {
  await stack?.stop();
});

describe("hostile behaviours are refused by our server and move no money", () => {
  // What the refused request left signed: the tampered authorization is still a valid signature of the
  // agent's, and counts until the chain proves it dead; garbage carries none.
  const cases: [BehaviourName, number, string, bigint][] = [
    ["underpay", 402, "invalid_exact_evm_payload_authorization_value_mismatch", PRICE - 1n],
    ["wrongPayTo", 402, "invalid_exact_evm_recipient_mismatch", PRICE],
    ["expired", 402, "invalid_exact_evm_payload_authorization_valid_before", PRICE],
    ["garbage", 400, "invalid_payload", 0n],
  ];
  it.each(cases)("%s → %i %s", async (name, status, code, leftSigned) => {
    const payer = stack.devnet.accounts[0];
    if (!payer) throw new Error("no payer");
    const agent = createAgent({ privateKey: payer.privateKey, behaviour: behaviours[name] });
    const before = await stack.usdc([payer.address, stack.payee.address]);
    const paidBefore = server.seen.paid;

    const result = await agent.request(`${server.url}/weather`);

    expect(result).toMatchObject({ outcome: "payment_failed", status, errorCode: code, amount: PRICE });
    expect(server.seen.paid - paidBefore).toBe(1);
    expect(await stack.usdc([payer.address, stack.payee.address])).toEqual(before);
    expect([agent.spent, agent.reserved]).toEqual([0n, leftSigned]);
    expect(agent.outstanding.map((o) => o.amount)).toEqual(leftSigned === 0n ? [] : [leftSigned]);

    // Cancelled on chain (the agent's key pays the gas), it no longer counts.
    await agent.cancelOutstanding(stack.devnet.client);
    expect([agent.spent, agent.reserved, agent.outstanding.length]).toEqual([0n, 0n, 0]);
  });

  it("replay: the first payment is honest, resending its header is refused and settles nothing", async () => {
    const payer = stack.devnet.accounts[1];
    if (!payer) throw new Error("no payer");
    const agent = createAgent({ privateKey: payer.privateKey, behaviour: behaviours.replay });
    const [before] = await stack.usdc([payer.address]);

    const first = await agent.request(`${server.url}/weather`);
    const second = await agent.request(`${server.url}/weather`);

    expect(first).toMatchObject({ outcome: "paid", status: 200 });
    expect(second).toMatchObject({
      outcome: "payment_failed",
      status: 402,
      errorCode: "invalid_exact_evm_nonce_already_used",
    });
    const [after] = await stack.usdc([payer.address]);
    expect((before as bigint) - (after as bigint)).toBe(PRICE);
    expect(agent.spent).toBe(PRICE);
    // The resent header signed nothing new: nothing more is at risk.
    expect(agent.reserved).toBe(0n);
  });

  it("a v1 agent reads the refusal's code from the v1 402 body", async () => {
    const payer = stack.devnet.accounts[2];
    if (!payer) throw new Error("no payer");
    const agent = createAgent({
      privateKey: payer.privateKey,
      behaviour: behaviours.underpay,
      x402Version: 1,
    });
    const [before] = await stack.usdc([payer.address]);

    const result = await agent.request(`${server.url}/weather`);

    expect(result).toMatchObject({
      outcome: "payment_failed",
      status: 402,
      errorCode: "invalid_exact_evm_payload_authorization_value_mismatch",
      body: { x402Version: 1 },
    });
    expect(await stack.usdc([payer.address])).toEqual([before]);
  });
});
