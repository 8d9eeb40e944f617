import { x402BatchSettlementAbi } from "../src/chain/index.ts";
import { X402_BATCH_SETTLEMENT_ADDRESS } from "../src/protocol/batch-settlement.ts";
import { defineScenario, settleChannels } from "../src/scenario/index.ts";
import { paymentPathHandlers, paymentPathRoutes } from "../src/stack.ts";

/**
 * Payment channels (`batch-settlement`), as a high-frequency buyer would use them: each agent deposits once
 * (an EIP-3009 authorization), then pays every request with a cumulative voucher and no chain work. When
 * the load is over each agent asks for its refund and the channel manager claims every charge and settles
 * it to the receiver. The built-in channel invariants hold the vouchers to the claims and settlements on
 * chain, and every deposit to what was claimed, refunded or is left; this scenario's own adds that nothing
 * is left: every channel was refunded down to its claims.
 */
export default defineScenario({
  name: "channels",
  description:
    "batch-settlement: agents deposit once, pay $0.001 vouchers, then refund; the server claims and settles",
  devnet: { profile: "flashblocks" },
  // A deposit of 10,000 payments ($10): one deposit per agent covers the whole run, no top-up.
  agents: { count: 20, policy: { depositMultiplier: 10_000 } },
  server: { routes: paymentPathRoutes, handlers: paymentPathHandlers },
  target: "/batch-settlement/evm/eip3009",
  load: { kind: "closed", durationMs: 10_000 },
  afterLoad: settleChannels,
  thresholds: ["errors.rate == 0", "outcomes.paid > 0", "outcomes.free == 0"],
  invariants: [
    {
      name: "every channel was refunded down to its claims",
      check: async ({ devnet, toBlock, agents }) => {
        const channels = agents.flatMap((agent) => agent.channels);
        const left = await Promise.all(
          channels.map(async ({ channelId }) => {
            const [balance, totalClaimed] = await devnet.client.readContract({
              address: X402_BATCH_SETTLEMENT_ADDRESS,
              abi: x402BatchSettlementAbi,
              functionName: "channels",
              args: [channelId],
              blockNumber: toBlock,
            });
            return { channelId, left: balance - totalClaimed };
          }),
        );
        const unrefunded = left.filter((c) => c.left !== 0n);
        return {
          ok: channels.length > 0 && unrefunded.length === 0,
          detail:
            unrefunded.length === 0
              ? `${channels.length} channel${channels.length === 1 ? "" : "s"}, none holding more than its claims`
              : unrefunded
                  .slice(0, 5)
                  .map((c) => `${c.channelId} holds ${c.left}`)
                  .join("; "),
        };
      },
    },
  ],
});
