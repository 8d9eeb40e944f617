import { defineScenario } from "../src/scenario/index.ts";

/** The everyday x402 pattern: every request pays for itself. */
export default defineScenario({
  name: "per-request",
  description: "every request pays $0.001 for GET /weather",
  // Base's 0.2 s cadence holds steady over a long run; `instant` computes a state root over the whole state
  // every block, and a 30 s run there lost 40–50% of its throughput by its end. `--profile instant` still
  // measures the latency floor.
  devnet: { profile: "flashblocks" },
  agents: { count: 50 },
  target: "/weather",
  load: { kind: "closed", durationMs: 30_000 },
  // A paid route that answers without asking for payment, or stops answering, must fail the run.
  thresholds: ["errors.rate < 0.01", "outcomes.paid > 0", "outcomes.free == 0"],
});
