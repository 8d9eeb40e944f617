import type { Address } from "viem";
import { deployPayoutSplitter } from "../src/chain/index.ts";
import { defineScenario } from "../src/scenario/index.ts";

/** Basis points of the splitter's payees: payees[1..3] (payees[0] is the marketplace itself). */
const SHARES = [5_000, 3_000, 2_000];
const SELLERS = 3;

/**
 * Marketplaces splitting per request, both ways x402 allows on EVM:
 * (a) `/bundle` pays a PayoutSplitter; the facilitator settles the payment and distributes it to three
 *     payees by basis points in one transaction, so every payee is credited or none is;
 * (b) `/market/:seller` pays that seller (dynamic payTo), and `/market/fee` pays the marketplace.
 * The invariants check that each payee received exactly its share and that total in equals total out.
 */
export default defineScenario({
  name: "payout-split",
  description: "marketplace payouts: a basis-point splitter settled atomically, and per-seller dynamic payTo",
  agents: { count: 20 },
  server: {
    payees: 1 + SELLERS,
    routes: async (payees, devnet) => {
      const [marketplace, ...sellers] = payees as [Address, ...Address[]];
      const splitter = await deployPayoutSplitter(
        devnet.client,
        { payees: sellers.slice(0, SHARES.length), shares: SHARES },
        devnet.mineOnDemand,
      );
      return {
        // 10,007 base units: not divisible by the shares, so the remainder rule is exercised on every sale.
        "GET /bundle": { price: 10_007n, payTo: splitter, description: "A bundle from three sellers" },
        "GET /market/fee": { price: "$0.0005", payTo: marketplace, description: "Marketplace fee" },
        "GET /market/:seller": {
          price: "$0.002",
          description: "An item from one seller",
          // Deterministic per request, as x402 requires: the paid retry must price the same.
          payTo: (request) => {
            const index = Number((request.params as { seller?: string }).seller);
            const seller = sellers[index];
            if (!seller) throw new Error(`no seller ${index}`);
            return seller;
          },
        },
      };
    },
  },
  // The bundle, the fee and each seller in turn: 12 entries, so (agent + iteration) picks as before from
  // both 4 kinds and 3 sellers. A table rather than a function, so that the scenario runs on Artillery too.
  target: {
    by: "agent+iteration",
    paths: Array.from({ length: 12 }, (_, k) =>
      k % 4 === 0 ? "/bundle" : k % 4 === 1 ? "/market/fee" : `/market/${k % SELLERS}`,
    ),
  },
  load: { kind: "closed", durationMs: 10_000 },
  thresholds: ["errors.rate == 0", "outcomes.paid > 0", "outcomes.free == 0"],
});
