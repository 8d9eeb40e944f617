import { type Chain, createTestClient, http, publicActions, type Transport, walletActions } from "viem";
import { DEVNET_POLLING_MS, devnetChain } from "./base-profile.ts";

/** One viem client with public, wallet and anvil test actions, tuned for a local node. */
export function createDevnetClient(rpcUrl: string, chainId: number) {
  return createTestClient({
    mode: "anvil",
    chain: devnetChain(rpcUrl, chainId),
    // JSON-RPC batching turns the thousands of per-wallet setup calls into a few HTTP round trips.
    transport: http(rpcUrl, { batch: { batchSize: 1000, wait: 0 }, retryCount: 0 }),
    pollingInterval: DEVNET_POLLING_MS,
  })
    .extend(publicActions)
    .extend(walletActions);
}

export type DevnetClient = ReturnType<typeof createDevnetClient>;
export type { Chain, Transport };
