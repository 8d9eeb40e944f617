import type { Address } from "viem";
import { DEFAULT_MNEMONIC, type Devnet, type DevnetAccount, deriveAccounts } from "../chain/index.ts";
import { type Agent, type AgentOptions, createAgent } from "./agent.ts";

export type WalletPoolOptions = {
  /** Default: anvil's `test test … junk`, whose account 0 is 0xf39F…2266. */
  mnemonic?: string;
  count: number;
  /** Index of the first wallet on `m/44'/60'/0'/0` (default 0). */
  offset?: number;
};

export type WalletPool = {
  readonly wallets: readonly DevnetAccount[];
  readonly addresses: readonly Address[];
  /**
   * Funds every wallet in a few batched transactions. `eth` is set (not added) and defaults to the
   * devnet's setup amount; agents pay gaslessly, so `eth: 0n` is enough for them. `usdc` is added.
   */
  fund(devnet: Pick<Devnet, "fund">, amounts?: { eth?: bigint; usdc?: bigint }): Promise<void>;
  /** One agent per wallet, each with its own budgets. */
  agents(options?: Omit<AgentOptions, "privateKey" | "account">): Agent[];
};

/** A deterministic set of wallets: the same mnemonic, count and offset always give the same keys. */
export function createWalletPool(options: WalletPoolOptions): WalletPool {
  const wallets = deriveAccounts(options.mnemonic ?? DEFAULT_MNEMONIC, options.count, options.offset ?? 0);
  const addresses = wallets.map((w) => w.address);
  return {
    wallets,
    addresses,
    fund: (devnet, amounts) => devnet.fund(addresses, amounts),
    agents: (agentOptions = {}) => wallets.map((w) => createAgent({ ...agentOptions, account: w })),
  };
}
