import { type Address, createPublicClient, type Hex, http } from "viem";
import { DEVNET_POLLING_MS, devnetChain } from "../../chain/index.ts";
import { ChainChecks } from "../exact-evm/chain-checks.ts";
import { RelayerPool } from "../exact-evm/relayer.ts";
import { countedTransport, JsonRpcBatcher, RpcCallCounter } from "../exact-evm/rpc.ts";
import type { SettlementLoad } from "../scheme.ts";
import { Permit2Settlements } from "./settlement.ts";
import { Permit2Simulation } from "./simulation.ts";

export type Permit2Options = {
  /** JSON-RPC endpoint of the chain the payments settle on. */
  rpcUrl: string;
  /** Its chain id; the schemes serve `eip155:<chainId>`. */
  chainId: number;
  /**
   * Private keys of the Permit2 relayers. Not the EIP-3009 module's: each pool counts its own keys' nonces,
   * so a key shared by two pools would collide with itself.
   */
  relayerKeys: readonly Hex[];
  /** How long a settle waits for its receipt before answering `settlement_pending` (default 5 s). */
  receiptTimeoutMs?: number;
  /**
   * The facilitator `/supported` names for `upto` (`extra.facilitatorAddress`), which clients bind into
   * their witness; one of the relayers' addresses (default: the first). Any relayer named in a witness is
   * accepted and sends that payment's settlement.
   */
  uptoFacilitator?: Address;
};

/** Under the resource server's default facilitator timeout (10 s), as in the EIP-3009 module. */
const DEFAULT_RECEIPT_TIMEOUT_MS = 5_000;

/** How often settlements past their Permit2 deadline are forgotten. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * What the Permit2 schemes (`exact` by Permit2 and `upto`) share on one chain: the node connections, the
 * relayer keys and one settlement ledger, since Permit2's nonces are per owner whatever the proxy.
 */
export class Permit2Relaying {
  readonly network: `eip155:${number}`;
  readonly relayers: RelayerPool;
  readonly checks: ChainChecks;
  readonly simulation: Permit2Simulation;
  readonly settlements: Permit2Settlements;
  readonly uptoFacilitator: Address;
  /** Every JSON-RPC call made for the Permit2 schemes. */
  readonly rpcCalls = new RpcCallCounter();
  private readonly rpc: JsonRpcBatcher;
  private readonly sendRpc: JsonRpcBatcher;
  private readonly sweeper: NodeJS.Timeout;
  private closing: Promise<void> | undefined;

  constructor(options: Permit2Options) {
    this.network = `eip155:${options.chainId}`;
    const receiptTimeoutMs = options.receiptTimeoutMs ?? DEFAULT_RECEIPT_TIMEOUT_MS;
    const client = createPublicClient({
      chain: devnetChain(options.rpcUrl, options.chainId),
      transport: countedTransport(
        http(options.rpcUrl, { batch: { wait: 0, batchSize: 200 }, retryCount: 0 }),
        this.rpcCalls,
      ),
      pollingInterval: DEVNET_POLLING_MS,
    });
    this.rpc = new JsonRpcBatcher(options.rpcUrl, { counter: this.rpcCalls });
    // Sends on their own connections, so a block being mined never holds up a verification's read.
    this.sendRpc = new JsonRpcBatcher(options.rpcUrl, {
      maxBatch: 1,
      maxInFlight: options.relayerKeys.length + 1,
      timeoutMs: receiptTimeoutMs + 5_000,
      counter: this.rpcCalls,
    });
    this.relayers = new RelayerPool(client, options.relayerKeys, { receiptTimeoutMs }, this.sendRpc);
    const upto = options.uptoFacilitator ?? this.relayers.addresses[0];
    if (!upto || !this.relayers.addresses.some((a) => a.toLowerCase() === upto.toLowerCase())) {
      throw new Error(`the upto facilitator ${upto} is not one of the Permit2 relayers`);
    }
    this.uptoFacilitator = upto;
    this.checks = new ChainChecks(client, this.rpc);
    this.simulation = new Permit2Simulation(this.rpc);
    this.settlements = new Permit2Settlements(client, this.relayers, this.simulation);
    this.sweeper = setInterval(
      () => this.settlements.forgetExpired(Math.floor(Date.now() / 1000)),
      SWEEP_INTERVAL_MS,
    );
    this.sweeper.unref();
  }

  settlementLoad(): SettlementLoad {
    return {
      relayers: this.relayers.addresses.length,
      busy: this.relayers.busy,
      queued: this.relayers.waiting,
    };
  }

  /** Closes the connections once, whichever of the schemes sharing them closes first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      await Promise.all([this.rpc.close(), this.sendRpc.close()]);
    })();
    return this.closing;
  }
}
