import type { Address } from "viem";
import {
  DEFAULT_MNEMONIC,
  type Devnet,
  type DevnetAccount,
  type DevnetOptions,
  deriveAccounts,
  startDevnet,
} from "./chain/index.ts";
import { type Facilitator, startFacilitator } from "./facilitator/index.ts";
import { type FaultProxy, startFaultProxy } from "./faults/index.ts";
import { type PaidRoute, type ResourceServer, startResourceServer } from "./server/index.ts";

/** Settlement relayers and payees are derived far from the wallets' indices, so `--accounts N` never overlaps them. */
const RELAYER_INDEX = 100_000;
const PAYEE_INDEX = 200_000;

export type StackOptions = {
  devnet?: DevnetOptions;
  facilitator?: { port?: number; relayers?: number; maxBatch?: number; receiptTimeoutMs?: number };
  server?: {
    port?: number;
    /** How many payees to derive for the routes (default 1). */
    payees?: number;
    /** The paid routes; may deploy what they pay (a payout splitter, say) on the devnet first. */
    routes?: (
      payees: readonly Address[],
      devnet: Devnet,
    ) => Record<string, PaidRoute> | Promise<Record<string, PaidRoute>>;
    facilitatorTimeoutMs?: number;
  };
  /**
   * Put fault proxies on the two hops a user's deployment has: facilitator → chain RPC, and
   * resource server → facilitator. Faults are then injected with `stack.proxies.*.setFaults(plan)`.
   */
  faults?: { rpc?: boolean; facilitator?: boolean };
};

export type Stack = {
  devnet: Devnet;
  facilitator: Facilitator;
  server: ResourceServer;
  /** Who the routes pay; the default route pays the first. */
  payees: readonly DevnetAccount[];
  /** The settlement relayers' accounts (to drain their ETH, say). */
  relayers: readonly DevnetAccount[];
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
 * The whole local payment system, devnet → facilitator → resource server, started in that order and
 * stopped in the reverse; a failure half way stops what already runs.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const devnet = await startDevnet(options.devnet);
  const started: { stop(): Promise<void> }[] = [devnet];
  const stop = async () => {
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const mnemonic = options.devnet?.mnemonic ?? DEFAULT_MNEMONIC;
    const relayers = deriveAccounts(mnemonic, options.facilitator?.relayers ?? 4, RELAYER_INDEX);
    const payees = deriveAccounts(mnemonic, options.server?.payees ?? 1, PAYEE_INDEX);
    const payTo = payees.map((p) => p.address);
    await devnet.fund(
      relayers.map((r) => r.address),
      { usdc: 0n },
    );
    const proxies: Stack["proxies"] = {};
    if (options.faults?.rpc) {
      proxies.rpc = await startFaultProxy({ target: devnet.rpcUrl });
      started.push(proxies.rpc);
    }
    const facilitator = await startFacilitator({
      port: options.facilitator?.port,
      exact: {
        rpcUrl: proxies.rpc?.url ?? devnet.rpcUrl,
        receiptTimeoutMs: options.facilitator?.receiptTimeoutMs,
        chainId: devnet.chainId,
        relayerKeys: relayers.map((r) => r.privateKey),
        maxBatch: options.facilitator?.maxBatch,
      },
    });
    started.push(facilitator);
    if (options.faults?.facilitator) {
      proxies.facilitator = await startFaultProxy({ target: facilitator.url });
      started.push(proxies.facilitator);
    }
    const server = await startResourceServer({
      facilitatorUrl: proxies.facilitator?.url ?? facilitator.url,
      facilitatorTimeoutMs: options.server?.facilitatorTimeoutMs,
      port: options.server?.port,
      routes: (await options.server?.routes?.(payTo, devnet)) ?? defaultRoutes(payTo[0] as Address),
    });
    started.push(server);
    return { devnet, facilitator, server, payees, relayers, proxies, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
