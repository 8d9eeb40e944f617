import type { Address, Hex } from "viem";
import { MULTICALL3_ADDRESS } from "../../chain/index.ts";
import type { X402ErrorCode } from "../../protocol/index.ts";
import { aggregate3CallData, balanceOfCall, decodeAggregate3 } from "../exact-evm/abi.ts";
import { isNodeUnreachable, type JsonRpcBatcher, JsonRpcError } from "../exact-evm/rpc.ts";
import { UpstreamUnavailableError } from "../scheme.ts";
import { PERMIT2_CALL, permit2AllowanceCall } from "./proxy-calls.ts";

/** A proxy call tried with `eth_call` or `eth_estimateGas`: its gas, or the node's revert. */
export type CallResult = { ok: true; gas: bigint } | { ok: false; message: string; data?: unknown };

/**
 * What the Permit2 paths ask the chain beyond code and ERC-1271 (which `ChainChecks` answers): a proxy call
 * simulated from a given sender (the upto proxy only lets the witness's facilitator settle), its gas, and
 * when it would fail, the SDK's diagnosis. Calls go through the scheme's {@link JsonRpcBatcher}.
 */
export class Permit2Simulation {
  constructor(private readonly rpc: JsonRpcBatcher) {}

  /** `eth_call` of `data` on `to` from `from`: true when it would succeed. */
  async call(from: Address, to: Address, data: Hex): Promise<boolean> {
    return (await this.request("eth_call", from, to, data)).ok;
  }

  /** `eth_estimateGas`: the gas a settlement needs, or why it would revert, before anything is signed. */
  estimateGas(from: Address, to: Address, data: Hex): Promise<CallResult> {
    return this.request("eth_estimateGas", from, to, data);
  }

  private async request(method: string, from: Address, to: Address, data: Hex): Promise<CallResult> {
    let result: unknown;
    try {
      result = await this.rpc.request(method, `[{"from":"${from}","to":"${to}","data":"${data}"},"latest"]`);
    } catch (error) {
      if (error instanceof JsonRpcError && error.fromNode) {
        return { ok: false, message: error.message, data: error.data };
      }
      throw isNodeUnreachable(error) ? unreachable(error) : error;
    }
    // An eth_call of `settle` returns nothing ("0x"); only an estimate is a quantity.
    const gas = method === "eth_estimateGas" && typeof result === "string" ? BigInt(result) : 0n;
    return { ok: true, gas };
  }

  /**
   * Why a simulated settlement fails, as the SDK's `diagnosePermit2SimulationFailure` reads it: one
   * Multicall3 call of the proxy's `PERMIT2()`, the payer's balance and its allowance to Permit2, mapped in
   * that order. Without an answer (or without Multicall3) it is `permit2_simulation_failed`.
   */
  async diagnose(proxy: Address, asset: Address, payer: Address, amount: bigint): Promise<X402ErrorCode> {
    const calls = [
      { target: proxy, allowFailure: true, callData: PERMIT2_CALL },
      { target: asset, allowFailure: true, callData: balanceOfCall(payer) },
      { target: asset, allowFailure: true, callData: permit2AllowanceCall(payer) },
    ];
    try {
      const raw = await this.rpc.request(
        "eth_call",
        `[{"to":"${MULTICALL3_ADDRESS}","data":"${aggregate3CallData(calls)}"},"latest"]`,
      );
      const [proxyRead, balance, allowance] = decodeAggregate3(raw as Hex);
      // A proxy without code "succeeds" with no return data: the SDK's decoding fails, so does this.
      if (!proxyRead?.success || proxyRead.returnData.length !== 66) return "permit2_proxy_not_deployed";
      if (word(balance) !== undefined && (word(balance) as bigint) < amount) {
        return "permit2_insufficient_balance";
      }
      if (word(allowance) !== undefined && (word(allowance) as bigint) < amount) {
        return "permit2_allowance_required";
      }
    } catch (error) {
      if (isNodeUnreachable(error)) throw unreachable(error);
    }
    return "permit2_simulation_failed";
  }
}

/** A successful uint256 read, else undefined (a failed or malformed read is unknown, not zero). */
function word(result: { success: boolean; returnData: Hex } | undefined): bigint | undefined {
  if (!result?.success || result.returnData.length < 66) return undefined;
  return BigInt(result.returnData.slice(0, 66));
}

function unreachable(error: unknown): Error {
  return new UpstreamUnavailableError(
    `the chain's node could not be asked: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
