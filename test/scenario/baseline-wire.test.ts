import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../../src/agents/index.ts";
import { facilitatorCallCount, paymentCost, WireTally } from "../../src/scenario/baseline.ts";
import { type Stack, startStack } from "../../src/stack.ts";
import { devnetAccount } from "../support/accounts.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ devnet: { accounts: 2 } });
});
afterAll(async () => {
  await stack?.stop();
});

describe("cost per paid request", () => {
  it("is the same for every payment: two round trips, the same bytes, a verify and a settle", async () => {
    const agent = createAgent({ privateKey: devnetAccount(stack.devnet, 0).privateKey });
    const facilitator = stack.facilitator?.metrics.registry;
    if (!facilitator) throw new Error("the stack runs our facilitator");
    const callsBefore = await facilitatorCallCount(facilitator);
    const tally = new WireTally();
    const sent = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const result = await agent.request(`${stack.server.url}/weather`);
      expect(result.outcome).toBe("paid");
      expect(result.wire?.roundTrips).toBe(2);
      sent.add(result.wire?.bytesSent ?? 0);
      tally.add(result);
    }
    // The payment header is base64 of JSON whose fields have fixed widths (nonce, signature, addresses).
    expect(sent.size).toBe(1);
    const callsAfter = await facilitatorCallCount(facilitator);
    const cost = paymentCost({
      paid: 20,
      settlements: 20,
      gasUsed: 0n,
      wire: tally,
      facilitatorCalls: callsAfter.calls - callsBefore.calls,
      jsonRpcCalls: callsAfter.rpcCalls - callsBefore.rpcCalls,
    });
    expect(cost.httpRoundTripsPerPaid).toBe(2);
    expect(cost.facilitatorCallsPerPaid).toBe(2);
    // At least the simulation and the transaction itself; receipts are polled while the block is built.
    expect(cost.jsonRpcCallsPerSettlement).toBeGreaterThanOrEqual(2);
    expect(cost.jsonRpcCallsPerSettlement).toBeLessThan(30);
    // A header of about 1.5 kB each way: the 402's requirements, then the payment signature.
    expect(cost.bytesSentPerPaid).toBeGreaterThan(1000);
    expect(cost.bytesReceivedPerPaid).toBeGreaterThan(1000);
  });

  it("counts a call that got no response as bytes sent without a round trip", async () => {
    const agent = createAgent({ privateKey: devnetAccount(stack.devnet, 1).privateKey, timeoutMs: 2000 });
    // Port 1: nothing listens there. Bytes are counted as the agent hands the request over, so they show.
    const closed = new URL(stack.server.url);
    closed.port = "1";
    const result = await agent.request(`${closed.origin}/weather`);
    expect(result.outcome).toBe("error");
    expect(result.wire?.roundTrips).toBe(0);
    expect(result.wire?.bytesSent).toBeGreaterThan(0);
  });
});
