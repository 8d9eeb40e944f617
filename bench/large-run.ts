import { defineScenario } from "../src/scenario/index.ts";

/**
 * Over 100,000 paid requests in one run, to show that the post-run checks scale with the run: the
 * settlements are read in bounded pages and the report comes back (`npm run scenario -- bench/large-run.ts`,
 * about 6 minutes on two cores). 0.2 s interval mining keeps anvil from slowing as blocks accumulate,
 * and eight relayers keep the settlement pipeline ahead of 300 arrivals a second.
 */
export default defineScenario({
  name: "large-run",
  description: "every request pays $0.001 for GET /weather, long enough for over 100,000 settlements",
  devnet: { blockTime: 0.2 },
  facilitator: { relayers: 8 },
  agents: { count: 100 },
  target: "/weather",
  load: { kind: "open", stages: [{ durationMs: 345_000, rate: 300 }] },
  thresholds: ["errors.rate < 0.01", "outcomes.paid >= 100000", "outcomes.free == 0"],
});
