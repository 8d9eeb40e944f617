import { type Address, type Chain, defineChain } from "viem";

/** Base mainnet's identity, which the devnet reproduces so that unmodified x402 clients pay it. */
export const BASE_CHAIN_ID = 8453;
export const BASE_NETWORK = "eip155:8453" as const;

/** Circle's USDC on Base; `@x402/evm` prices `"$0.01"` on eip155:8453 in this token. */
export const USDC_ADDRESS: Address = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
export const USDC_NAME = "USD Coin";
export const USDC_VERSION = "2";
export const USDC_DECIMALS = 6;

/** Multicall3's address on every EVM chain; the official facilitator diagnoses failures through it. */
export const MULTICALL3_ADDRESS: Address = "0xcA11bde05977b3631167028862bE2a173976CA11";

/** Uniswap's Permit2, the same address on every chain: `exact` by Permit2 pulls the payer's tokens through it. */
export const PERMIT2_ADDRESS: Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3";

/** The x402 proxy that Permit2 `exact` payments name as their spender (`@x402/evm`'s `x402ExactPermit2ProxyAddress`). */
export const X402_EXACT_PERMIT2_PROXY_ADDRESS: Address = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";

/** The x402 proxy that `upto` (metered) payments name as their spender (`x402UptoPermit2ProxyAddress`). */
export const X402_UPTO_PERMIT2_PROXY_ADDRESS: Address = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

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
