import { type Address, type Chain, defineChain } from "viem";

/** Base mainnet's identity, which the devnet reproduces so that unmodified x402 clients pay it. */
export const BASE_CHAIN_ID = 8453;
export const BASE_NETWORK = "eip155:8453" as const;

/** Circle's USDC on Base; `@x402/evm` prices `"$0.01"` on eip155:8453 in this token. */
export const USDC_ADDRESS: Address = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
export const USDC_NAME = "USD Coin";
export const USDC_VERSION = "2";
export const USDC_DECIMALS = 6;

/** A USDC deployment: where it is, and the EIP-712 domain (name, version) its authorizations are for. */
export type UsdcToken = { address: Address; name: string; version: string; decimals: number };

/** A network the devnet can run as: its ids, and its USDC as `@x402/evm`'s default-asset table has it. */
export type NetworkProfile = {
  /** How messages name it. */
  label: string;
  chainId: number;
  /** CAIP-2 id, as x402 v2 names networks. */
  network: `eip155:${number}`;
  /** x402 v1's name for it. */
  v1Name: string;
  usdc: UsdcToken;
};

/**
 * The networks the devnet runs as, by their `--network` name. Servers are usually built against Base
 * Sepolia first, whose USDC has another address and another EIP-712 name: a payment signed for one
 * network's token never verifies against the other's, so the devnet must carry the very token the server
 * names. Multicall3, Permit2 and the x402 proxies share one address on both.
 */
export const NETWORKS = {
  base: {
    label: "Base",
    chainId: BASE_CHAIN_ID,
    network: BASE_NETWORK,
    v1Name: "base",
    usdc: { address: USDC_ADDRESS, name: USDC_NAME, version: USDC_VERSION, decimals: USDC_DECIMALS },
  },
  "base-sepolia": {
    label: "Base Sepolia",
    chainId: 84532,
    network: "eip155:84532",
    v1Name: "base-sepolia",
    usdc: { address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", name: "USDC", version: "2", decimals: 6 },
  },
} as const satisfies Record<string, NetworkProfile>;
export type NetworkName = keyof typeof NETWORKS;
export const NETWORK_NAMES = Object.keys(NETWORKS) as readonly NetworkName[];

export function isNetworkName(name: string): name is NetworkName {
  return Object.hasOwn(NETWORKS, name);
}

/** The network's USDC, which the devnet places (or a fork must carry) and every payment is made in. */
export function usdcOf(network: NetworkName): UsdcToken {
  return NETWORKS[network].usdc;
}

/** The network whose chain id `chainId` is: a fork or a running chain is the network it says it is. */
export function networkOfChainId(chainId: number): NetworkName | undefined {
  return NETWORK_NAMES.find((name) => NETWORKS[name].chainId === chainId);
}

/** Multicall3's address on every EVM chain; the official facilitator diagnoses failures through it. */
export const MULTICALL3_ADDRESS: Address = "0xcA11bde05977b3631167028862bE2a173976CA11";

// Protocol facts the SDK hard-codes; the devnet places our contracts there.
export {
  PERMIT2_ADDRESS,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
} from "../protocol/permit2.ts";

/** anvil's and Hardhat's well-known development mnemonic: account 0 is 0xf39F…2266, as users expect. */
export const DEFAULT_MNEMONIC = "test test test test test test test test test test test junk";

/**
 * The EVM rule sets the devnet runs, by anvil 1.7.1's name. Older ones are left out: the harness sends
 * EIP-1559 transactions and its contracts are compiled for Cancun.
 */
export const HARDFORKS = ["cancun", "prague", "osaka"] as const;
export type Hardfork = (typeof HARDFORKS)[number];

export function isHardfork(name: string): name is Hardfork {
  return (HARDFORKS as readonly string[]).includes(name);
}

/**
 * Mining profiles: how often blocks come, and the rules they follow.
 *
 * - `instant` mines each transaction as it arrives, the latency floor, and keeps full history, which the
 *   reorg faults need. Every transaction is a block, so
 *   the chain grows thousands of blocks a minute, and anvil 1.7.1 under Prague rules (and later) slows
 *   with every block: the EIP-2935 history contract's storage grows with the chain and is paid for again
 *   in each block. Cancun rules have no such contract, so they keep a long run's figures steady.
 * - `flashblocks` has Base's 200 ms preconfirmation cadence, what a Base user waits for; Cancun too, so a
 *   soak's last minute runs on the same chain speed as its first.
 * - `base` has Base's 2 s blocks and the rules closest to Base's that anvil offers: Osaka's, which
 *   include Prague's (EIP-7702 set-code transactions, BLS precompiles, EIP-7623 calldata floor) and the
 *   P256VERIFY precompile at 0x100 that Base has had since Fjord. At one block per 2 s, the per-block
 *   cost stays small.
 *
 * Both interval profiles are for long load runs, so they keep pruned history, for anvil's memory to grow
 * less than half as fast (see {@link History}), and skip state roots, for a block to cost the same after
 * 100,000 settlements as before the first (see {@link StateRoots}).
 */
export const PROFILES = {
  instant: { blockTime: undefined, hardfork: "cancun", history: "full", stateRoots: "computed" },
  base: { blockTime: 2, hardfork: "osaka", history: "pruned", stateRoots: "skipped" },
  flashblocks: { blockTime: 0.2, hardfork: "cancun", history: "pruned", stateRoots: "skipped" },
} as const satisfies Record<
  string,
  { blockTime: number | undefined; hardfork: Hardfork; history: History; stateRoots: StateRoots }
>;
export type ProfileName = keyof typeof PROFILES;

/**
 * How much of the past the devnet keeps. `full`: every block's state, for reads at any past block and
 * for reorgs of any depth. `pruned`: the state of the newest 16 blocks only (anvil's `--prune-history`),
 * while blocks, transactions, receipts and logs all stay. Measured at 300 settlements/s on 0.2 s blocks,
 * anvil grew 22 GB/h with full history (and faster as it went: it keeps 1,500 states below 2 s blocks) and
 * 8.5 GB/h pruned, the same runs' invariants passing.
 */
export const HISTORIES = ["full", "pruned"] as const;
export type History = (typeof HISTORIES)[number];

export function isHistory(name: string): name is History {
  return (HISTORIES as readonly string[]).includes(name);
}

/**
 * Whether anvil computes each block's state root. anvil 1.7.1 computes it over the whole state, every
 * block, and every EIP-3009 settlement leaves a storage slot (the used nonce): an empty block took 2 ms on
 * a fresh chain, 55 ms after 50,000 settlements' slots and 265 ms after 200,000, longer than a 0.2 s
 * interval. A fork computes no state root (it cannot: the state lives upstream), and took 2–15 ms over
 * the same slots. `skipped` therefore runs the devnet as a fork of an empty anvil of its own: block headers
 * carry no real state root, which no x402 client, server or facilitator reads.
 */
export const STATE_ROOTS = ["computed", "skipped"] as const;
export type StateRoots = (typeof STATE_ROOTS)[number];

export function isStateRoots(name: string): name is StateRoots {
  return (STATE_ROOTS as readonly string[]).includes(name);
}

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(PROFILES, name);
}

/** A chain without custom formatters: blocks and transactions come back in viem's plain shapes. */
export type DevnetChain = Chain<undefined>;

/**
 * A viem chain for a devnet at `rpcUrl`. Clients built on it should still set `pollingInterval`
 * (see `DEVNET_POLLING_MS`): viem derives it from `blockTime` with a 500 ms floor.
 */
export function devnetChain(rpcUrl: string, chainId = BASE_CHAIN_ID): DevnetChain {
  return defineChain({
    id: chainId,
    name: "x402 devnet",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
    contracts: { multicall3: { address: MULTICALL3_ADDRESS } },
  });
}

/** Receipt polling for anvil: it answers in well under a millisecond, so poll often. */
export const DEVNET_POLLING_MS = 25;

// ---------------------------------------------------------------- batch settlement and the second token

// The batch-settlement contracts' canonical addresses are protocol facts; the devnet places ours there.
export {
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../protocol/batch-settlement.ts";

/**
 * A second dollar token on the mock devnet (never on a fork): 6 decimals and EIP-2612 `permit`, but no
 * EIP-3009, so x402 can take it only through Permit2. Anyone may `mint` it. The address is ours, not Base's.
 */
export const MOCK_ERC20_ADDRESS: Address = "0x00000000000000000000000000000000000E2020";
export const MOCK_ERC20_NAME = "Mock Dollar";
export const MOCK_ERC20_VERSION = "1";
export const MOCK_ERC20_DECIMALS = 6;
