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

/** anvil's and Hardhat's well-known development mnemonic: account 0 is 0xf39F…2266, as users expect. */
export const DEFAULT_MNEMONIC = "test test test test test test test test test test test junk";

/** Mining profiles. `instant` mines each transaction as it arrives; `base` has Base's 2 s block time. */
export const PROFILES = {
  instant: { blockTime: undefined },
  base: { blockTime: 2 },
} as const satisfies Record<string, { blockTime: number | undefined }>;
export type ProfileName = keyof typeof PROFILES;

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
