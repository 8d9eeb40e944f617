import {
  type Chain,
  type Client,
  createTestClient,
  type HttpTransport,
  http,
  type PublicActions,
  publicActions,
  type TestActions,
  type TestRpcSchema,
  type Transport,
  type WalletActions,
  walletActions,
} from "viem";
import { DEVNET_POLLING_MS, type DevnetChain, devnetChain } from "./base-profile.ts";

/** A viem client with public, wallet and anvil test actions. Spelled out so declarations can name it. */
export type DevnetClient = Client<
  HttpTransport,
  DevnetChain,
  undefined,
  TestRpcSchema<"anvil">,
  { mode: "anvil" } & TestActions & PublicActions<HttpTransport, DevnetChain> & WalletActions<DevnetChain>
>;

/** One viem client with public, wallet and anvil test actions, tuned for a local node. */
export function createDevnetClient(rpcUrl: string, chainId: number): DevnetClient {
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

export type { Chain, Transport };
