import { defineScenario } from "../src/scenario/index.ts";

/** The everyday x402 pattern: every request pays for itself. */
export default defineScenario({
  name: "per-request",
  description: "50 agents, each paying $0.001 per request for GET /weather in a closed loop for 30 s",
  agents: { count: 50 },
  target: "/weather",
  load: { kind: "closed", durationMs: 30_000 },
  thresholds: ["errors.rate < 0.01", "outcomes.paid > 0"],
});
