import { defineScenario } from "../src/scenario/index.ts";

/** The everyday x402 pattern: every request pays for itself. */
export default defineScenario({
  name: "per-request",
  description: "every request pays $0.001 for GET /weather",
  agents: { count: 50 },
  target: "/weather",
  load: { kind: "closed", durationMs: 30_000 },
  // A paid route that answers without asking for payment, or stops answering, must fail the run.
  thresholds: ["errors.rate < 0.01", "outcomes.paid > 0", "outcomes.free == 0"],
});
