import type { Address } from "viem";
import {
  connectDevnet,
  DEFAULT_MNEMONIC,
  type Devnet,
  type DevnetAccount,
  type DevnetOptions,
  deriveAccounts,
  HD_RANGES,
  startDevnet,
} from "./chain/index.ts";
import { type Facilitator, startFacilitator } from "./facilitator/index.ts";
import { type FaultProxy, startFaultProxy } from "./faults/index.ts";
import {
  type PaidRoute,
  type PaywallOptions,
  type ResourceServer,
  type ResourceServerOptions,
  setSettlementOverrides,
  startResourceServer,
} from "./server/index.ts";

export type StackOptions = {
  devnet?: DevnetOptions;
  /**
   * Attach to this running devnet (`x402-devnet up`'s, say) instead of starting anvil; of `devnet`, only
   * `accounts`, `mnemonic` and `fund` apply. Stopping the stack leaves the chain running.
   */
  rpcUrl?: string;
  /** Use this facilitator (settling on the same chain) instead of starting ours. */
  facilitatorUrl?: string;
  facilitator?: {
    port?: number;
    /** Keys settling `exact` by EIP-3009 (default 4). */
    relayers?: number;
    /**
     * Keys settling the Permit2 paths (`exact` by Permit2 and `upto`; default 2). Their own: a key's nonces
     * are tracked by one relayer pool only.
     */
    permit2Relayers?: number;
    maxBatch?: number;
    receiptTimeoutMs?: number;
  };
  server?: {
    port?: number;
    /** How many payees to derive for the routes (default 1). */
    payees?: number;
    /** The paid routes; may deploy what they pay (a payout splitter, say) on the devnet first. */
    routes?: (
      payees: readonly Address[],
      devnet: Devnet,
    ) => Record<string, PaidRoute> | Promise<Record<string, PaidRoute>>;
    /** Handlers by route key; a route without one answers `{ path, paid: true }`. */
    handlers?: ResourceServerOptions["handlers"];
    facilitatorTimeoutMs?: number;
  };
  /**
   * Put fault proxies on the two hops a user's deployment has: facilitator → chain RPC, and
   * resource server → facilitator. Faults are then injected with `stack.proxies.*.setFaults(plan)`.
   */
  faults?: { rpc?: boolean; facilitator?: boolean };
};

const PERMIT2_RELAYER_OFFSET = 10_000;
const CHANNEL_RELAYER_OFFSET = 20_000;
const RECEIVER_AUTHORIZER_OFFSET = 30_000;

export type Stack = {
  devnet: Devnet;
  /** Ours, or undefined when `facilitatorUrl` named the user's. */
  facilitator: Facilitator | undefined;
  /** Where the server verifies and settles (before any fault proxy). */
  facilitatorUrl: string;
  server: ResourceServer;
  /** Who the routes pay; the default route pays the first. */
  payees: readonly DevnetAccount[];
  /** Our facilitator's settlement relayers' accounts (to drain their ETH, say); none with the user's. */
  relayers: readonly DevnetAccount[];
  /** The same keys by the payment paths they settle: each set is its own relayer pool. */
  relayerSets: {
    exact: readonly DevnetAccount[];
    permit2: readonly DevnetAccount[];
    channels: readonly DevnetAccount[];
  };
  proxies: { rpc?: FaultProxy; facilitator?: FaultProxy };
  stop(): Promise<void>;
};

/** The route every stack serves unless told otherwise: a weather report for $0.001. */
export function defaultRoutes(payTo: Address): Record<string, PaidRoute> {
  return {
    "GET /weather": { price: "$0.001", payTo, description: "Current weather", mimeType: "application/json" },
  };
}

/**
 * `up`'s routes: `/weather`, and one route per payment path, named as x402's end-to-end suite names them,
 * so that a client under test finds each path where it expects it.
 */
export function paymentPathRoutes(payees: readonly Address[]): Record<string, PaidRoute> {
  const payTo = payees[0] as Address;
  return {
    ...defaultRoutes(payTo),
    "GET /exact/evm/eip3009": { price: "$0.001", payTo, description: "exact, EIP-3009" },
    "GET /exact/evm/permit2": {
      price: "$0.001",
      payTo,
      assetTransferMethod: "permit2",
      description: "exact, Permit2 (approve Permit2 first)",
    },
    "GET /upto/evm/permit2": {
      price: "$0.01",
      payTo,
      scheme: "upto",
      description: "upto: metered LLM tokens, at most $0.01 (?used= meters an amount, else a random one)",
    },
    "GET /batch-settlement/evm/eip3009": {
      price: "$0.001",
      payTo,
      scheme: "batch-settlement",
      description: "batch-settlement: a channel funded by an EIP-3009 deposit, then a voucher per request",
    },
    "GET /batch-settlement/evm/permit2": {
      price: "$0.001",
      payTo,
      scheme: "batch-settlement",
      assetTransferMethod: "permit2",
      description: "batch-settlement: a channel funded by a Permit2 deposit (approve Permit2 first)",
    },
  };
}

/**
 * The handlers behind {@link paymentPathRoutes}: the metered route charges `?used=` (atomic units, `50%` or
 * `$0.004`) or, without it, a random share of its maximum, as a model's output length varies per call.
 */
export const paymentPathHandlers: NonNullable<ResourceServerOptions["handlers"]> = {
  "GET /upto/evm/permit2": async (request, reply) => {
    const { used } = request.query as { used?: string };
    const tokens = 1 + Math.floor(Math.random() * 1_000);
    // 10 atomic units a token: at most 10,000, the route's $0.01.
    setSettlementOverrides(reply, { amount: used ?? String(tokens * 10) });
    return { model: "devnet-echo", tokens: used === undefined ? tokens : undefined, paid: true };
  },
};

/**
 * What a server on `devnet` prices in: the devnet's own USDC on its own chain, so that a Base Sepolia
 * devnet's 402s name what a server configured for Base Sepolia names.
 */
export function pricingOn(
  devnet: Pick<Devnet, "chainId" | "usdc">,
): Required<Pick<PaywallOptions, "network" | "asset">> {
  const { address, decimals, name, version } = devnet.usdc;
  return { network: `eip155:${devnet.chainId}`, asset: { address, decimals, extra: { name, version } } };
}

/**
 * The whole local payment system, devnet → facilitator → resource server, started in that order and
 * stopped in the reverse; a failure half way stops what already runs. Given `rpcUrl` or
 * `facilitatorUrl`, the user's chain or facilitator stands in for ours.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const devnet = options.rpcUrl
    ? await connectDevnet({ ...options.devnet, rpcUrl: options.rpcUrl })
    : await startDevnet(options.devnet);
  const started: { stop(): Promise<void> }[] = [devnet];
  const stop = async () => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const mnemonic = options.devnet?.mnemonic ?? DEFAULT_MNEMONIC;
    const indices = options.rpcUrl ? HD_RANGES.attached : HD_RANGES.started;
    const payees = deriveAccounts(mnemonic, options.server?.payees ?? 1, indices.payees);
    const payTo = payees.map((p) => p.address);
    const proxies: Stack["proxies"] = {};
    let facilitator: Facilitator | undefined;
    let relayerSets: Stack["relayerSets"] = { exact: [], permit2: [], channels: [] };
    let facilitatorUrl = options.facilitatorUrl;
    if (!facilitatorUrl) {
      const exactRelayers = deriveAccounts(mnemonic, options.facilitator?.relayers ?? 4, indices.relayers);
      // Far past any --relayers count, so no two sets share a key: a key's nonces belong to one pool.
      const permit2Relayers = deriveAccounts(
        mnemonic,
        options.facilitator?.permit2Relayers ?? 2,
        indices.relayers + PERMIT2_RELAYER_OFFSET,
      );
      const channelRelayers = deriveAccounts(mnemonic, 2, indices.relayers + CHANNEL_RELAYER_OFFSET);
      // Signs the channels' claims and refunds: a key of its own, that never pays gas.
      const [receiverAuthorizer] = deriveAccounts(mnemonic, 1, indices.relayers + RECEIVER_AUTHORIZER_OFFSET);
      relayerSets = { exact: exactRelayers, permit2: permit2Relayers, channels: channelRelayers };
      await devnet.fund(
        [...exactRelayers, ...permit2Relayers, ...channelRelayers].map((r) => r.address),
        { usdc: 0n },
      );
      if (options.faults?.rpc) {
        proxies.rpc = await startFaultProxy({ target: devnet.rpcUrl });
        started.push(proxies.rpc);
      }
      // Every module settles on the same chain, through the RPC fault proxy when there is one.
      const chain = {
        rpcUrl: proxies.rpc?.url ?? devnet.rpcUrl,
        receiptTimeoutMs: options.facilitator?.receiptTimeoutMs,
        chainId: devnet.chainId,
      };
      const keysOf = (accounts: readonly DevnetAccount[]) => accounts.map((r) => r.privateKey);
      facilitator = await startFacilitator({
        port: options.facilitator?.port,
        exact: { ...chain, relayerKeys: keysOf(exactRelayers), maxBatch: options.facilitator?.maxBatch },
        permit2: { ...chain, relayerKeys: keysOf(permit2Relayers) },
        batchSettlement: {
          ...chain,
          relayerKeys: keysOf(channelRelayers),
          receiverAuthorizerKey: receiverAuthorizer?.privateKey,
        },
      });
      started.push(facilitator);
      facilitatorUrl = facilitator.url;
    }
    if (options.faults?.facilitator) {
      proxies.facilitator = await startFaultProxy({ target: facilitatorUrl });
      started.push(proxies.facilitator);
    }
    const server = await startResourceServer({
      ...pricingOn(devnet),
      facilitatorUrl: proxies.facilitator?.url ?? facilitatorUrl,
      facilitatorTimeoutMs: options.server?.facilitatorTimeoutMs,
      // Legacy clients (x402-fetch 1.x) read only a v1 402 body; v2 ones still get PAYMENT-REQUIRED.
      acceptV1: "auto",
      port: options.server?.port,
      routes: (await options.server?.routes?.(payTo, devnet)) ?? defaultRoutes(payTo[0] as Address),
      handlers: options.server?.handlers,
      // Smart-account agents sign in too: their ERC-1271 / ERC-6492 proofs are checked on the devnet.
      sessions: { verifyMessage: (args) => devnet.client.verifyMessage(args) },
    });
    started.push(server);
    const relayers = [...relayerSets.exact, ...relayerSets.permit2, ...relayerSets.channels];
    return { devnet, facilitator, facilitatorUrl, server, payees, relayers, relayerSets, proxies, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
