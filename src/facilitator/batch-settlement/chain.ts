import {
  type Address,
  createPublicClient,
  decodeFunctionResult,
  encodeFunctionData,
  erc20Abi,
  type Hex,
  http,
} from "viem";
import { DEVNET_POLLING_MS, devnetChain, MULTICALL3_ADDRESS } from "../../chain/index.ts";
import { PERMIT2_ADDRESS } from "../../protocol/index.ts";
import { aggregate3CallData, balanceOfCall, decodeAggregate3 } from "../exact-evm/abi.ts";
import { ChainChecks } from "../exact-evm/chain-checks.ts";
import { type RelayerClient, RelayerPool } from "../exact-evm/relayer.ts";
import {
  countedTransport,
  isNodeUnreachable,
  JsonRpcBatcher,
  JsonRpcError,
  RpcCallCounter,
} from "../exact-evm/rpc.ts";
import { UpstreamUnavailableError } from "../scheme.ts";
import { signedBy } from "../signatures.ts";
import {
  batchContract,
  channelReads,
  decodeChannels,
  decodePendingWithdrawal,
  decodeReceivers,
  decodeRefundNonce,
  receiversCallData,
} from "./calls.ts";

/** A channel as read from the contract (bigints; the wire form is {@link import("../../protocol/index.ts").ChannelState}). */
export type OnChainChannel = {
  balance: bigint;
  totalClaimed: bigint;
  withdrawRequestedAt: number;
  refundNonce: bigint;
};

/** A call tried with `eth_call` or `eth_estimateGas`: its gas, or the node's revert message. */
export type CallResult = { ok: true; gas: bigint } | { ok: false; message: string };

export type BatchChainOptions = {
  rpcUrl: string;
  chainId: number;
  relayerKeys: readonly Hex[];
  receiptTimeoutMs: number;
};

/**
 * What the batch-settlement module asks of the chain, on its own connections and relayer keys (a key
 * belongs to one pool, which counts its nonces): reads batched through Multicall3 as the SDK makes them,
 * simulations from a relayer (the SDK's `eth_call`s carry the facilitator as `from`), signature checks with
 * the on-chain `SignatureChecker` rule (ECDSA without code, strict ERC-1271 with it).
 */
export class BatchChain {
  readonly rpcCalls = new RpcCallCounter();
  readonly relayers: RelayerPool;
  readonly checks: ChainChecks;
  readonly client: RelayerClient;
  private readonly rpc: JsonRpcBatcher;
  private readonly sendRpc: JsonRpcBatcher;

  constructor(options: BatchChainOptions) {
    this.client = createPublicClient({
      chain: devnetChain(options.rpcUrl, options.chainId),
      transport: countedTransport(
        http(options.rpcUrl, { batch: { wait: 0, batchSize: 200 }, retryCount: 0 }),
        this.rpcCalls,
      ),
      pollingInterval: DEVNET_POLLING_MS,
    });
    this.rpc = new JsonRpcBatcher(options.rpcUrl, { counter: this.rpcCalls });
    // Sends on connections of their own, so a block being mined never holds up a verification's read.
    this.sendRpc = new JsonRpcBatcher(options.rpcUrl, {
      maxBatch: 1,
      maxInFlight: options.relayerKeys.length + 1,
      timeoutMs: options.receiptTimeoutMs + 5_000,
      counter: this.rpcCalls,
    });
    this.relayers = new RelayerPool(
      this.client,
      options.relayerKeys,
      { receiptTimeoutMs: options.receiptTimeoutMs },
      this.sendRpc,
    );
    this.checks = new ChainChecks(this.client, this.rpc);
  }

  /** The account simulations are made from: the SDK simulates as the facilitator that will send. */
  get simulator(): Address {
    return this.relayers.addresses[0] as Address;
  }

  /**
   * `eth_call` (or `eth_estimateGas`) of `data` on `to` from a relayer. A revert is an answer; a node that
   * cannot be asked throws {@link UpstreamUnavailableError}.
   */
  async call(
    to: Address,
    data: Hex,
    method: "eth_call" | "eth_estimateGas" = "eth_call",
  ): Promise<CallResult> {
    try {
      const result = await this.rpc.request(
        method,
        `[{"from":"${this.simulator}","to":"${to}","data":"${data}"},"latest"]`,
      );
      return {
        ok: true,
        gas: method === "eth_estimateGas" && typeof result === "string" ? BigInt(result) : 0n,
      };
    } catch (error) {
      if (error instanceof JsonRpcError && error.fromNode) return { ok: false, message: error.message };
      throw unreachable(error);
    }
  }

  /**
   * Reads through Multicall3 `aggregate3`; undefined entries are calls that failed. Throws
   * {@link UpstreamUnavailableError} when the node cannot be asked, a plain error when Multicall3 itself fails.
   */
  async readMany(calls: readonly { target: Address; callData: Hex }[]): Promise<(Hex | undefined)[]> {
    let raw: unknown;
    try {
      raw = await this.rpc.request(
        "eth_call",
        `[{"to":"${MULTICALL3_ADDRESS}","data":"${aggregate3CallData(
          calls.map((c) => ({ ...c, allowFailure: true })),
        )}"},"latest"]`,
      );
    } catch (error) {
      if (error instanceof JsonRpcError && error.fromNode)
        throw new Error(`Multicall3 failed: ${error.message}`);
      throw unreachable(error);
    }
    return decodeAggregate3(raw as Hex).map((r) => (r.success ? r.returnData : undefined));
  }

  /**
   * The channel's state and, when `payerOf` is given, that payer's balance of `token`; undefined when a
   * read failed or decoded to nothing (the SDK's `rpc_read_failed`).
   */
  async channel(
    channelId: Hex,
    payerBalance?: { token: Address; payer: Address },
  ): Promise<{ state: OnChainChannel; payerBalance: bigint | undefined } | undefined> {
    const [channels, pending, nonce] = channelReads(channelId);
    const calls = [
      { target: batchContract, callData: channels as Hex },
      ...(payerBalance ? [{ target: payerBalance.token, callData: balanceOfCall(payerBalance.payer) }] : []),
      { target: batchContract, callData: pending as Hex },
      { target: batchContract, callData: nonce as Hex },
    ];
    let results: (Hex | undefined)[];
    try {
      results = await this.readMany(calls);
    } catch (error) {
      if (error instanceof UpstreamUnavailableError) throw error;
      return undefined;
    }
    try {
      const [ch, ...rest] = results;
      const balance = payerBalance ? rest.shift() : undefined;
      const [wd, rn] = rest;
      if (!ch || !wd || !rn || (payerBalance && !balance)) return undefined;
      const channel = decodeChannels(ch);
      return {
        state: {
          ...channel,
          withdrawRequestedAt: decodePendingWithdrawal(wd),
          refundNonce: decodeRefundNonce(rn),
        },
        payerBalance: balance
          ? decodeFunctionResult({ abi: erc20Abi, functionName: "balanceOf", data: balance })
          : undefined,
      };
    } catch {
      return undefined;
    }
  }

  /** `receivers(receiver, token)`; undefined when the read fails. */
  async receiver(receiver: Address, token: Address) {
    const [result] = await this.readMany([
      { target: batchContract, callData: receiversCallData(receiver, token) },
    ]);
    try {
      return result ? decodeReceivers(result) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The payer's ERC-20 allowance to Permit2; undefined when it cannot be read. */
  async permit2Allowance(token: Address, payer: Address): Promise<bigint | undefined> {
    const data = encodeFunctionData({
      abi: erc20Abi,
      functionName: "allowance",
      args: [payer, PERMIT2_ADDRESS],
    });
    const [result] = await this.readMany([{ target: token, callData: data }]);
    try {
      return result
        ? decodeFunctionResult({ abi: erc20Abi, functionName: "allowance", data: result })
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** The on-chain `SignatureChecker` rule: see `signedBy`. */
  signedBy(signer: Address, digest: Hex, signature: Hex): Promise<boolean> {
    return signedBy(this.checks, signer, digest, signature);
  }

  close(): Promise<void> {
    return Promise.all([this.rpc.close(), this.sendRpc.close()]).then(() => {});
  }
}

function unreachable(error: unknown): Error {
  if (error instanceof UpstreamUnavailableError) return error;
  if (!isNodeUnreachable(error) && !(error instanceof JsonRpcError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  return new UpstreamUnavailableError(
    `the chain's node could not be asked: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
