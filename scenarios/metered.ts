import { defineScenario } from "../src/scenario/index.ts";
import { paymentPathHandlers, paymentPathRoutes } from "../src/stack.ts";

/**
 * Metered work, as LLM inference is sold: each agent signs an `upto` payment for at most $0.01, and the
 * server charges what the call used (a random number of tokens) through `Settlement-Overrides`. The money
 * invariants hold each payer to exactly what its receipts say was metered, and every charge to no more
 * than was signed.
 */
export default defineScenario({
  name: "metered",
  description: "upto payments: agents sign $0.01 at most, the server meters a random amount per call",
  devnet: { profile: "flashblocks" },
  agents: { count: 20, permit2Allowance: true },
  server: { routes: paymentPathRoutes, handlers: paymentPathHandlers },
  target: "/upto/evm/permit2",
  load: { kind: "closed", durationMs: 10_000 },
  thresholds: ["errors.rate == 0", "outcomes.paid > 0", "outcomes.free == 0"],
});
