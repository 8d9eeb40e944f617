import { type Address, parseAbiItem } from "viem";
import { defineScenario, logPages } from "../src/scenario/index.ts";
import type { PaidRoute } from "../src/server/index.ts";

const RESOURCES = ["/weather", "/news", "/quotes"] as const;

const transfer = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

/**
 * V2 wallet sessions (Sign-In-With-X): each agent pays once for each resource, then signs in with its
 * wallet for every further request, with no payment and no chain work. Each resource pays its own payee.
 * The policy allows one payment per URL, so an agent whose session failed is refused rather than paying
 * twice, and the refusal fails `errors.count`: every request after the first three must be a session.
 * Its own invariant reads the same from the chain: no agent's USDC went to one payee twice.
 */
export default defineScenario({
  name: "sessions",
  description: `each agent pays $0.001 once for ${RESOURCES.join(", ")}, then reuses access through SIWX`,
  server: {
    payees: RESOURCES.length,
    routes: (payees) =>
      Object.fromEntries(
        RESOURCES.map((path, i): [string, PaidRoute] => [
          `GET ${path}`,
          { price: "$0.001", payTo: payees[i] as Address, sessions: true },
        ]),
      ),
  },
  agents: { count: 20, policy: { maxPaymentsPerUrl: 1 } },
  target: ({ iteration }) => RESOURCES[iteration % RESOURCES.length] as string,
  load: { kind: "closed", durationMs: 10_000 },
  thresholds: [
    "errors.count == 0",
    "outcomes.refused_by_policy == 0",
    "outcomes.free == 0",
    // Sessions dominate: 60 payments (20 agents × 3 resources) against hundreds of sessions a second.
    "outcomes.session.share > 90%",
    // No facilitator call, no chain work: even with every agent in flight at once, a session answers in a
    // fraction of a payment's time (a paid request's p50 is 100 ms and more here).
    "e2e.session.p50 < 50ms",
  ],
  invariants: [
    {
      name: "no agent paid a resource twice (on chain)",
      check: async ({ devnet, fromBlock, toBlock, agents }) => {
        const pairs = new Map<string, number>();
        let transfers = 0;
        for await (const { logs } of logPages(devnet.client, {
          address: devnet.usdc.address,
          event: transfer,
          args: { from: agents.map((a) => a.address) },
          fromBlock,
          toBlock,
        })) {
          transfers += logs.length;
          for (const { args } of logs) {
            const pair = `${args.from} → ${args.to}`;
            pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
          }
        }
        const twice = [...pairs].filter(([, count]) => count > 1);
        return {
          ok: twice.length === 0,
          detail:
            twice.length === 0
              ? `${transfers} transfers, each agent to each payee at most once`
              : twice.map(([pair, count]) => `${pair} ${count} times`).join("; "),
        };
      },
    },
  ],
});
