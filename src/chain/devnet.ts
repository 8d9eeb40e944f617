import getPort from "get-port";
import type { Address, Hex } from "viem";
import { anvilInstance } from "./anvil.ts";
import {
  DEFAULT_MNEMONIC,
  HARDFORKS,
  type Hardfork,
  HISTORIES,
  type History,
  isHardfork,
  isHistory,
  isNetworkName,
  isProfileName,
  isStateRoots,
  MULTICALL3_ADDRESS,
  NETWORK_NAMES,
  NETWORKS,
  type NetworkName,
  networkOfChainId,
  PROFILES,
  type ProfileName,
  STATE_ROOTS,
  type StateRoots,
  type UsdcToken,
} from "./base-profile.ts";
import { createDevnetClient, type DevnetClient } from "./client.ts";
import { DevnetOptionError } from "./errors.ts";
import { fundAccounts } from "./funding.ts";
import { assertCanonicalUsdc, placeCanonicalContracts, placePeriphery } from "./placement.ts";
import { FORK_ROLE, probeRpcUrl } from "./rpc-probe.ts";
import { type ChainStatus, readChainStatus, type StallWatchOptions, watchForStall } from "./stall.ts";
import { type DevnetAccount, deriveAccounts } from "./wallets.ts";

export type DevnetOptions = {
  /**
   * The network the devnet runs as: its chain id, and its USDC at its address under its EIP-712 name
   * (default `base`; a fork defaults to the forked chain's).
   */
  network?: NetworkName;
  /** Port for anvil's RPC; a free one when absent. */
  port?: number;
  host?: string;
  /** `instant` (automine, the default), `flashblocks` (0.2 s blocks) or `base` (2 s blocks). */
  profile?: ProfileName;
  /** Seconds between blocks, overriding the profile; fractions such as 0.2 work. */
  blockTime?: number;
  /**
   * The EVM rules (`cancun`, `prague`, `osaka`), overriding the profile's. A fork follows the forked
   * chain's rules unless this is given.
   */
  hardfork?: Hardfork;
  /** `full` or `pruned` state history, overriding the profile's (see {@link History}). */
  history?: History;
  /** Whether blocks carry a computed state root, overriding the profile's (see {@link StateRoots}). */
  stateRoots?: StateRoots;
  gasLimit?: bigint;
  /** How many wallets to derive and fund (default 10). */
  accounts?: number;
  mnemonic?: string;
  /** What each wallet is funded with: wei of ETH (default 100 ETH) and USDC base units (default 10,000 USDC). */
  fund?: { eth?: bigint; usdc?: bigint };
  /** Fork this chain (real Base or Base Sepolia) instead of placing the mock USDC. */
  forkUrl?: string;
  forkBlockNumber?: bigint;
};

export type Devnet = {
  rpcUrl: string;
  chainId: number;
  /**
   * The network the chain is, by its chain id; undefined for a fork of, or a chain someone else runs
   * under, another chain id, which is held to Base's USDC.
   */
  network: NetworkName | undefined;
  /** The USDC every payment on this chain is made in, with the EIP-712 domain clients sign for. */
  usdc: UsdcToken;
  /** `attached`: a chain someone else runs (`connectDevnet`); stopping the handle leaves it running. */
  mode: "mock" | "fork" | "attached";
  /** The profile the devnet was started with; undefined for a chain someone else runs. */
  profile: ProfileName | undefined;
  /** Seconds between blocks, or undefined under automine. */
  blockTime: number | undefined;
  /**
   * The EVM rules anvil runs, by its own name in lower case (`cancun`, `osaka`, a Base fork's `jovian`);
   * undefined when the node does not say.
   */
  hardfork: string | undefined;
  /** The state history anvil keeps; undefined for a chain someone else runs. */
  history: History | undefined;
  /** Whether blocks carry a computed state root; undefined for a chain someone else runs. */
  stateRoots: StateRoots | undefined;
  /** anvil's process id, for watching its memory; undefined for a chain someone else runs. */
  pid: number | undefined;
  /** Blocks do not come per transaction (interval or manual mining): setup mines its own. */
  mineOnDemand: boolean;
  contracts: { usdc: Address; multicall3: Address };
  accounts: readonly DevnetAccount[];
  /** A viem client with public, wallet and anvil test actions on this devnet. */
  client: DevnetClient;
  /** Funds more addresses the way setup funded the wallets (defaults: the setup amounts). */
  fund(addresses: readonly Address[], amounts?: { eth?: bigint; usdc?: bigint }): Promise<void>;
  snapshot(): Promise<Hex>;
  revert(id: Hex): Promise<void>;
  /** Back to the state right after setup (funded wallets, low block height: anvil slows as the chain grows). */
  reset(): Promise<void>;
  status(): Promise<ChainStatus>;
  watchForStall(options: StallWatchOptions): () => void;
  stop(): Promise<void>;
};

export const DEFAULT_FUNDING = { eth: 100n * 10n ** 18n, usdc: 10_000n * 10n ** 6n } as const;

/**
 * Starts anvil as the network's chain (Base's 8453 by default) with its USDC and Multicall3 at their
 * addresses and funded wallets.
 */
export async function startDevnet(options: DevnetOptions = {}): Promise<Devnet> {
  const host = options.host ?? "127.0.0.1";
  const profile = options.profile ?? "instant";
  if (options.network !== undefined && !isNetworkName(options.network)) {
    throw new DevnetOptionError(
      `network must be one of ${NETWORK_NAMES.join(", ")}, got ${String(options.network)}`,
    );
  }
  // Plain JavaScript and scenario files reach here unchecked; anvil's own error would be a failed start.
  if (!isProfileName(profile)) {
    throw new DevnetOptionError(
      `profile must be one of ${Object.keys(PROFILES).join(", ")}, got ${String(profile)}`,
    );
  }
  if (options.hardfork !== undefined && !isHardfork(options.hardfork)) {
    throw new DevnetOptionError(
      `hardfork must be one of ${HARDFORKS.join(", ")}, got ${String(options.hardfork)}`,
    );
  }
  if (options.history !== undefined && !isHistory(options.history)) {
    throw new DevnetOptionError(
      `history must be one of ${HISTORIES.join(", ")}, got ${String(options.history)}`,
    );
  }
  const history = options.history ?? PROFILES[profile].history;
  if (options.stateRoots !== undefined && !isStateRoots(options.stateRoots)) {
    throw new DevnetOptionError(
      `stateRoots must be one of ${STATE_ROOTS.join(", ")}, got ${String(options.stateRoots)}`,
    );
  }
  // A fork computes no state root anyway; the choice is the mock chain's.
  const stateRoots = options.forkUrl ? "skipped" : (options.stateRoots ?? PROFILES[profile].stateRoots);
  const blockTime = options.blockTime ?? PROFILES[profile].blockTime;
  const intervalMining = blockTime !== undefined;
  const mode = options.forkUrl ? "fork" : "mock";
  // A fork keeps the forked chain's rules (anvil picks them from its chain id: Base's are OP's latest),
  // so a fork run tests against what is deployed; the profile's choice is for the mock chain.
  const hardfork = options.hardfork ?? (mode === "fork" ? undefined : PROFILES[profile].hardfork);
  const upstreamChainId = options.forkUrl ? await probeRpcUrl(options.forkUrl, FORK_ROLE) : undefined;
  const network = devnetNetwork(options.network, upstreamChainId);
  const chainId = upstreamChainId ?? NETWORKS[network].chainId;

  // Skipped state roots on the mock chain: it forks an empty anvil of its own, which nothing else uses.
  const genesis =
    mode === "mock" && stateRoots === "skipped"
      ? anvilInstance({ host, port: await getPort({ host }), chainId, hardfork })
      : undefined;
  await genesis?.start();
  const port = options.port ?? (await getPort({ host }));
  let pid: number | undefined;
  const instance = anvilInstance({
    host,
    port,
    chainId,
    blockTime,
    hardfork,
    gasLimit: options.gasLimit,
    forkUrl: options.forkUrl ?? (genesis ? `http://${host}:${genesis.port}` : undefined),
    forkBlockNumber: options.forkBlockNumber,
    pruneHistory: history === "pruned",
    onSpawn: (spawned) => {
      pid = spawned;
    },
  });
  await instance.start().catch(async (error: unknown) => {
    await genesis?.stop();
    throw error;
  });

  const rpcUrl = `http://${host}:${port}`;
  const client = createDevnetClient(rpcUrl, chainId);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await instance.stop();
    await genesis?.stop();
  };

  try {
    if (mode === "fork") {
      await assertCanonicalUsdc(client, network);
      await placePeriphery(client);
    } else {
      await placeCanonicalContracts(client, intervalMining, network);
    }
    return await fundedDevnet(client, {
      rpcUrl,
      chainId,
      network: networkOfChainId(chainId),
      usdc: NETWORKS[network].usdc,
      mode,
      profile,
      blockTime,
      hardfork: await readHardfork(client),
      history,
      stateRoots,
      pid,
      accounts: deriveAccounts(options.mnemonic ?? DEFAULT_MNEMONIC, options.accounts ?? 10),
      fund: options.fund,
      mineOnDemand: intervalMining,
      stop,
    });
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The network a devnet runs as. A fork is the chain it forks: without a network named, the one of its chain
 * id (Base's for another id, as before networks were named); with one, the fork must be of that chain.
 */
function devnetNetwork(named: NetworkName | undefined, upstreamChainId: number | undefined): NetworkName {
  if (upstreamChainId === undefined) return named ?? "base";
  const forked = networkOfChainId(upstreamChainId);
  if (named !== undefined && named !== forked) {
    const { label, chainId } = NETWORKS[named];
    throw new DevnetOptionError(
      `network ${named} is chain ${chainId}, but the fork URL serves chain ${upstreamChainId}: fork a ${label} RPC, or name the network it is${forked ? ` (${forked})` : ""}`,
    );
  }
  return forked ?? "base";
}

/**
 * The rules anvil actually runs, read back rather than assumed: a fork's come from anvil's choice, and an
 * attached chain's from whoever started it.
 */
export async function readHardfork(client: DevnetClient): Promise<string | undefined> {
  // anvil_nodeInfo is anvil's own method, which viem's test actions do not type.
  const rpc = client.request as unknown as (args: { method: string }) => Promise<unknown>;
  const info = await rpc({ method: "anvil_nodeInfo" }).catch(() => undefined);
  const name = (info as { hardFork?: unknown } | undefined)?.hardFork;
  return typeof name === "string" ? name.toLowerCase() : undefined;
}

/**
 * Funds the wallets on a chain that carries the network's USDC and Multicall3, takes the baseline
 * snapshot, and returns the handle; shared by a devnet we start and one we attach to.
 */
export async function fundedDevnet(
  client: DevnetClient,
  {
    fund: amounts,
    ...chain
  }: Pick<
    Devnet,
    | "rpcUrl"
    | "chainId"
    | "network"
    | "usdc"
    | "mode"
    | "profile"
    | "blockTime"
    | "hardfork"
    | "history"
    | "stateRoots"
    | "pid"
    | "mineOnDemand"
    | "accounts"
    | "stop"
  > & {
    fund: DevnetOptions["fund"];
  },
): Promise<Devnet> {
  const funding = {
    eth: amounts?.eth ?? DEFAULT_FUNDING.eth,
    usdc: amounts?.usdc ?? DEFAULT_FUNDING.usdc,
  };
  const fund = (addresses: readonly Address[], amounts: { eth?: bigint; usdc?: bigint } = {}) =>
    fundAccounts(client, {
      accounts: addresses,
      eth: amounts.eth ?? funding.eth,
      usdc: amounts.usdc ?? funding.usdc,
      token: chain.usdc.address,
      intervalMining: chain.mineOnDemand,
    });
  await fund(chain.accounts.map((a) => a.address));

  let baseline = await client.snapshot();
  return {
    ...chain,
    contracts: { usdc: chain.usdc.address, multicall3: MULTICALL3_ADDRESS },
    client,
    fund,
    snapshot: () => client.snapshot(),
    revert: async (id) => {
      await client.revert({ id });
    },
    reset: async () => {
      await client.revert({ id: baseline });
      // anvil consumes a snapshot when reverting to it, so the baseline is taken again.
      baseline = await client.snapshot();
    },
    status: () => readChainStatus(client),
    watchForStall: (watchOptions) => watchForStall(client, watchOptions),
  };
}
