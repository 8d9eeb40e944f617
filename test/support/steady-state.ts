import type { SteadyState } from "../../src/scenario/index.ts";

/** The steady-state figures of a hand-made report whose test looks at something else. */
export const steadyStateFixture = (): SteadyState => ({
  windowSeconds: 5,
  windows: [],
  drift: { e2e: { p50: null, p99: null }, throughput: null },
  memory: { harness: { startMb: 100, endMb: 100, growthMb: 0, growthPerHourMb: 0 }, anvil: null },
});
