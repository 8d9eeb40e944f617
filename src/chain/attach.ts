import { DEFAULT_MNEMONIC, NETWORKS, networkOfChainId } from "./base-profile.ts";
import { createDevnetClient } from "./client.ts";
import { type Devnet, type DevnetOptions, fundedDevnet, readHardfork } from "./devnet.ts";
import { UnusableChainError } from "./errors.ts";
import { assertCanonicalUsdc, placePeriphery } from "./placement.ts";
import { ATTACH_ROLE, probeRpcUrl } from "./rpc-probe.ts";
import { deriveAccounts, HD_RANGES } from "./wallets.ts";

export type AttachOptions = {
  /**
   * A running anvil with its network's USDC (Base's, or Base Sepolia's as chain 84532): `x402-devnet up`'s
   * devnet, or an anvil fork of either.
   */
  rpcUrl: string;
  /** How many wallets to derive and fund (default 10). */
  accounts?: number;
  /** HD index of the first wallet (default `HD_RANGES.attached.agents`). */
  firstAccount?: number;
  mnemonic?: string;
  fund?: DevnetOptions["fund"];
};

const ANVIL_HINT =
  "Attach to an anvil devnet: `x402-devnet up [--network base-sepolia]`, or `anvil --fork-url <a Base or Base Sepolia RPC>`.";

/**
 * A handle on a devnet someone else runs, so a run can pay a server or facilitator that settles there.
 * Its wallets are funded through the same master-minter path as a devnet we start; `stop()` leaves the
 * chain running.
 */
export async function connectDevnet(options: AttachOptions): Promise<Devnet> {
  const chainId = await probeRpcUrl(options.rpcUrl, ATTACH_ROLE);
  const client = createDevnetClient(options.rpcUrl, chainId);
  // Two methods viem's test client does not type; both are plain JSON-RPC.
  const rpc = client.request as unknown as (args: { method: string }) => Promise<unknown>;
  const clientVersion = String(await rpc({ method: "web3_clientVersion" }).catch(() => ""));
  if (!clientVersion.toLowerCase().startsWith("anvil/")) {
    throw new UnusableChainError(
      `${options.rpcUrl} is ${clientVersion ? JSON.stringify(clientVersion) : "not anvil"}: the harness funds its agents with anvil's methods (balances set directly, the USDC master minter acting without its key).`,
      ANVIL_HINT,
    );
  }
  // The chain is the network its id says; another id is held to Base's USDC, as before networks were named.
  const network = networkOfChainId(chainId);
  await assertCanonicalUsdc(client, network ?? "base", ANVIL_HINT);
  await placePeriphery(client);
  const [automine, interval, hardfork] = await Promise.all([
    client.getAutomine(),
    rpc({ method: "anvil_getIntervalMining" }).catch(() => null),
    readHardfork(client),
  ]);
  return fundedDevnet(client, {
    rpcUrl: options.rpcUrl,
    chainId,
    network,
    usdc: NETWORKS[network ?? "base"].usdc,
    mode: "attached",
    profile: undefined,
    hardfork,
    history: undefined,
    stateRoots: undefined,
    pid: undefined,
    blockTime: !automine && typeof interval === "number" && interval > 0 ? interval : undefined,
    accounts: deriveAccounts(
      options.mnemonic ?? DEFAULT_MNEMONIC,
      options.accounts ?? 10,
      options.firstAccount ?? HD_RANGES.attached.agents,
    ),
    fund: options.fund,
    mineOnDemand: !automine,
    // Not ours to stop.
    stop: async () => {},
  });
}
