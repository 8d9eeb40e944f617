import { defineScenario } from "../src/scenario/index.ts";

/**
 * A fixed arrival rate held long enough to see what only time shows: a chain that slows as it grows,
 * queues that fill, memory that leaks. On Base's 200 ms cadence (`flashblocks`: Cancun rules, pruned
 * history and skipped state roots keep anvil's block cost flat). 400/s is 60% of the knee that
 * `npm run scenario -- --profile flashblocks --find-capacity --rate 100 --duration 5s --threshold "e2e.p99 < 1000ms"`
 * found on two cores (666/s). Ten minutes of it: 239,789 settlements, e2e p50 +5.1% and p99 -36% from the
 * first minute to the last, every invariant held. `--duration` scales it (`--duration 90s` is CI's quick
 * variant, in `npm run bench -- --quick`); `--rate` moves it.
 */
export default defineScenario({
  name: "soak",
  description:
    "every request pays $0.001 for GET /weather at a fixed rate, held to see that latency, throughput and memory stay level",
  devnet: { profile: "flashblocks" },
  facilitator: { relayers: 8 },
  agents: { count: 50 },
  target: "/weather",
  load: { kind: "open", stages: [{ durationMs: 600_000, rate: 400 }] },
  thresholds: [
    "errors.rate < 0.001",
    "outcomes.free == 0",
    // The last window against the first: a run that slows or leaks as it ages fails.
    "drift.e2e.p50 < 20%",
    "drift.e2e.p99 < 20%",
    "drift.throughput < 10%",
    // Measured over ten minutes at 400/s: the harness +1,400 MB/h (levelling off: its records are ~130 bytes a
    // settlement), anvil +10,500 MB/h (the chain's blocks, transactions and state, ~9 KB a settlement).
    // Twice that is a leak, not the run.
    "memory.harness.growthPerHour < 3000MB",
    "memory.anvil.growthPerHour < 21000MB",
  ],
});
