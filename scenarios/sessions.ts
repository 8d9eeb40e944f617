import type { Address } from "viem";
import {
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../src/protocol/batch-settlement.ts";
import { defineScenario, logPages, settleChannels, TRANSFER_EVENT } from "../src/scenario/index.ts";
import type { PaidRoute } from "../src/server/index.ts";

const RESOURCES = ["/weather", "/news", "/quotes"] as const;
const CHANNEL = "/stream";

/** Where a channel deposit's USDC goes: the batch contract (Permit2) or its ERC-3009 collector. */
const DEPOSIT_TO = new Set(
  [X402_BATCH_SETTLEMENT_ADDRESS, ERC3009_DEPOSIT_COLLECTOR_ADDRESS].map((a) => a.toLowerCase()),
);

/**
 * Two kinds of session side by side. Even agents use V2 wallet sessions (Sign-In-With-X): each pays once
 * for each resource, then signs in with its wallet for every further request, with no payment and no chain
 * work; each resource pays its own payee. Odd agents open a `batch-settlement` channel on `/stream`: one
 * deposit, then a voucher per request, also without chain work, and a refund when the load is over (when
 * the server also claims and settles). The summary's "e2e by kind" table compares a SIWX session request
 * with a voucher request.
 *
 * The policy allows one payment per URL, so a SIWX agent whose session failed is refused rather than paying
 * twice, and the refusal fails `errors.count`; a voucher is a payment per request, so each asks for
 * `/stream?n=<iteration>`, a URL of its own to the policy (`origin+path+query`), and the deposit covers
 * the whole run. The scenario's own invariant reads the same from the chain: no agent's USDC went to one
 * payee (or into a channel) twice.
 */
export default defineScenario({
  name: "sessions",
  description: `even agents pay $0.001 once for ${RESOURCES.join(", ")}, then reuse access through SIWX; odd agents deposit once into a channel and pay ${CHANNEL} with $0.001 vouchers`,
  server: {
    payees: RESOURCES.length,
    routes: (payees) => ({
      ...Object.fromEntries(
        RESOURCES.map((path, i): [string, PaidRoute] => [
          `GET ${path}`,
          { price: "$0.001", payTo: payees[i] as Address, sessions: true },
        ]),
      ),
      [`GET ${CHANNEL}`]: { price: "$0.001", payTo: payees[0] as Address, scheme: "batch-settlement" },
    }),
  },
  agents: {
    count: 20,
    // A deposit of 100,000 payments ($100): no agent tops its channel up within a run.
    policy: { maxPaymentsPerUrl: 1, perUrlKey: "origin+path+query", depositMultiplier: 100_000 },
  },
  target: ({ agent, iteration }) =>
    agent % 2 === 0 ? (RESOURCES[iteration % RESOURCES.length] as string) : `${CHANNEL}?n=${iteration}`,
  load: { kind: "closed", durationMs: 10_000 },
  afterLoad: settleChannels,
  thresholds: [
    "errors.count == 0",
    "outcomes.refused_by_policy == 0",
    "outcomes.free == 0",
    // SIWX sessions dominate their half: 30 payments (10 agents × 3 resources) against hundreds of sessions
    // a second, while the other half's vouchers are all `paid`.
    "outcomes.session.share > 30%",
    // No facilitator call, no chain work: even with every agent in flight at once, a session answers in a
    // fraction of a settled payment's time (a settled request's p50 is 100 ms and more here).
    "e2e.session.p50 < 50ms",
  ],
  invariants: [
    {
      name: "no agent paid a resource twice (on chain)",
      check: async ({ devnet, fromBlock, toBlock, agents }) => {
        const pairs = new Map<string, number>();
        let payments = 0;
        let deposits = 0;
        for await (const { logs } of logPages(devnet.client, {
          address: devnet.usdc.address,
          event: TRANSFER_EVENT,
          args: { from: agents.map((a) => a.address) },
          fromBlock,
          toBlock,
        })) {
          for (const { args } of logs) {
            if (DEPOSIT_TO.has((args.to ?? "").toLowerCase())) deposits += 1;
            else payments += 1;
            const pair = `${args.from} → ${args.to}`;
            pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
          }
        }
        const twice = [...pairs].filter(([, count]) => count > 1);
        return {
          ok: twice.length === 0,
          detail:
            twice.length === 0
              ? `${payments} payments and ${deposits} channel deposits, each agent to each payee or channel at most once`
              : twice.map(([pair, count]) => `${pair} ${count} times`).join("; "),
        };
      },
    },
  ],
});
