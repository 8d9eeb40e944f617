import type { Address } from "viem";
import type { LoadSpec } from "../load-spec.ts";

/** The Artillery version the harness installs and writes commands for: pinned, as the script's shape is. */
export const ARTILLERY_VERSION = "2.0.34";

/**
 * The HD indices of Artillery's wallets, apart from every range a local run uses (`HD_RANGES`): worker
 * thread `slot` pays from `agents + slot × SLOT_SIZE + i`. A slot is drawn from the worker's identity, so
 * workers on different machines need no coordinator, and the report's per-slot counters say which wallets
 * a run used.
 */
export const ARTILLERY_HD = {
  /** The wallet a local run funds the workers' wallets from. */
  funder: 999_999_999,
  agents: 1_000_000_000,
  slotSize: 4_096,
  /** 2^18 slots of 4,096 wallets stay below BIP-32's first hardened index (2^31). */
  slots: 262_144,
} as const;

/**
 * Everything a worker needs to run the scenario's agents, as JSON in the script's `config.variables`: the
 * load, where to send it, which chain to fund and pay on, and how many wallets each worker thread takes.
 */
export type ArtilleryJob = {
  version: 1;
  /** Salts the workers' slots, so that two runs on one chain draw different wallets. */
  runId: string;
  spec: LoadSpec;
  /** Agents request `new URL(path, url)`, or `url` itself when `fixed` (a paid route given by URL). */
  server: { url: string; fixed: boolean };
  chain: {
    rpcUrl: string;
    chainId: number;
    /** The token the agents pay with, and its EIP-712 domain (the funder signs EIP-3009 transfers in it). */
    usdc: { address: Address; name: string; version: string };
  };
  /** Wallets each worker thread derives and funds (agents of a closed model; an open model's pool). */
  walletsPerWorker: number;
  /** Wei each wallet gets for its own transactions (Permit2 approvals), besides `spec.usdc`. */
  eth: string;
  /** Counters set to 0 when a worker starts: Artillery's `ensure` fails a check on a metric never emitted. */
  zeroCounters: string[];
  /** The run's thresholds, judged when the harness reads the report (`x402-devnet artillery report`). */
  thresholds: string[];
  /** The chain's height before the run: the invariants read the chain from the block after it. */
  fromBlock: string;
  /** The payees known before the run (our server's), whose balances the invariants read. */
  payees: Address[];
};

/** Where the job sits in the script: `config.variables[JOB_VARIABLE]`, a JSON string. */
export const JOB_VARIABLE = "x402Job";
/** The processor's export that runs one virtual user. */
export const VU_FUNCTION = "x402Agent";
/** The key a worker funds its wallets from: a secret, so an environment variable rather than the script. */
export const FUNDER_KEY_ENV = "X402_FUNDER_KEY";
/** A file whose appearance tells the workers to stop sending (the harness's Ctrl-C). */
export const STOP_FILE_ENV = "X402_STOP_FILE";
/** The agents' mnemonic, when not the public test one (a real testnet). */
export const MNEMONIC_ENV = "X402_AGENT_MNEMONIC";

/**
 * The metrics a worker emits, which Artillery merges across workers (counters add, histograms merge as
 * sketches). Latencies are in microseconds, since Artillery rounds summaries to 0.1 of a unit. No name
 * holds an agent: a name is a sketch per worker per period.
 */
export const METRIC = {
  requests: "x402.requests",
  errors: "x402.errors",
  outcome: (outcome: string) => `x402.outcome.${outcome}`,
  error: (code: string) => `x402.error.${code}`,
  /** Latency of a phase (µs). */
  phase: (phase: string) => `x402.latency.${phase}`,
  /** End-to-end latency of an outcome (µs). */
  e2eOf: (outcome: string) => `x402.e2e.${outcome}`,
  /** End-to-end latency of paid requests by payment path (µs). */
  e2ePath: (path: string) => `x402.path.${path}`,
  /** USDC base units the paid responses say were charged, over the run. */
  charged: "x402.charged",
  /** Paid responses charging more than the payer signed for (a metered path). */
  overSigned: "x402.over_signed",
  /** Agents whose spent plus outstanding signatures went past the policy's budget. */
  overBudget: "x402.agents_over_budget",
  /** Paid responses by channel voucher, which settle only in claims after the run. */
  channelPaid: "x402.channel_paid",
  /**
   * When the load ran, as epoch ms: a worker's wallets ready (`start`) and each request done (`end`).
   * Artillery keeps a sketch's min and max exactly, so min(start)…max(end) is the load's span, without
   * the workers' set-up or an interrupted run's idle tail, which Artillery's own first and last metric
   * times hold.
   */
  clock: (edge: "start" | "end") => `x402.clock.${edge}`,
  /** A worker could not set up its wallets: no request was sent from it. */
  setupFailed: "x402.setup_failed",
  /** Per slot: worker threads that drew it (more than one is a collision), wallets, paid and charged. */
  slot: (slot: number, what: "workers" | "wallets" | "paid" | "charged") => `x402.slot.${slot}.${what}`,
} as const;

/** A slot counter's name read back: `x402.slot.<n>.<what>`. */
export const SLOT_COUNTER = /^x402\.slot\.(\d+)\.(workers|wallets|paid|charged)$/;
