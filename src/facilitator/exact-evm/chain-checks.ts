import { type Address, decodeErrorResult, decodeFunctionResult, type Hex } from "viem";
import { MULTICALL3_ADDRESS, mockUsdcAbi } from "../../chain/index.ts";
import type { ExactEvmPayload, X402ErrorCode } from "../../protocol/index.ts";
import { UpstreamUnavailableError } from "../scheme.ts";
import {
  aggregate3CallData,
  authorizationStateCall,
  balanceOfCall,
  type Call3Result,
  DOMAIN_SEPARATOR_CALL,
  decodeAggregate3,
  NAME_CALL,
  transferCallData,
  VERSION_CALL,
} from "./abi.ts";
import type { RelayerClient } from "./relayer.ts";
import { isNodeUnreachable, type JsonRpcBatcher, JsonRpcError } from "./rpc.ts";

const ERC1271_MAGIC = "0x1626ba7e";
const erc1271Abi = [
  {
    type: "function",
    name: "isValidSignature",
    stateMutability: "view",
    inputs: [
      { name: "hash", type: "bytes32" },
      { name: "signature", type: "bytes" },
    ],
    outputs: [{ name: "", type: "bytes4" }],
  },
] as const;

export type ChainVerdict = { ok: true } | { ok: false; reason: X402ErrorCode; message?: string };

/** The reference facilitator caches a positive asset-is-a-contract check for 15 minutes, so do we. */
const ASSET_CODE_TTL_MS = 15 * 60_000;

/**
 * The chain-facing half of verification: what the reference facilitator learns from the chain (is the
 * asset a contract, would `transferWithAuthorization` succeed, and if not, why), asked as it asks it: the
 * transfer simulated with an `eth_call`, and only when that fails, its diagnosis reads (`authorizationState`,
 * `balanceOf`, `name`, `version`) in one Multicall3 `aggregate3`. The happy path's calls go out through a
 * {@link JsonRpcBatcher}, so the node sees a few JSON-RPC batches, not one request per verification.
 */
export class ChainChecks {
  private readonly assetCode = new Map<string, number>();
  private readonly separators = new Map<string, Promise<Hex | undefined>>();

  /**
   * `client` serves the occasional reads (code, ERC-1271); `rpc` the one `eth_call` every verification
   * makes, batched with the concurrent ones.
   */
  constructor(
    private readonly client: RelayerClient,
    private readonly rpc: JsonRpcBatcher,
  ) {}

  async hasCode(address: Address): Promise<boolean> {
    const code = await this.client.getCode({ address }).catch((error: unknown) => {
      throwIfUnreachable(error);
      throw error;
    });
    return code !== undefined && code !== "0x";
  }

  /** `asset_not_deployed_contract` unless the asset has code; positive answers are cached. */
  async assetDeployed(asset: Address): Promise<boolean> {
    const key = asset.toLowerCase();
    const checkedAt = this.assetCode.get(key);
    if (checkedAt !== undefined && Date.now() - checkedAt < ASSET_CODE_TTL_MS) return true;
    const deployed = await this.hasCode(asset);
    if (deployed) this.assetCode.set(key, Date.now());
    return deployed;
  }

  /** ERC-1271: a contract signer accepts the digest when `isValidSignature` returns the magic value. */
  async isValidContractSignature(signer: Address, digest: Hex, signature: Hex): Promise<boolean> {
    try {
      const result = await this.client.readContract({
        address: signer,
        abi: erc1271Abi,
        functionName: "isValidSignature",
        args: [digest, signature],
      });
      return result.toLowerCase() === ERC1271_MAGIC;
    } catch (error) {
      // A revert is a refusal; no answer at all is not.
      throwIfUnreachable(error);
      return false;
    }
  }

  /**
   * Simulates the transfer with an `eth_call` of `transferWithAuthorization`, as the reference facilitator
   * does, and reads the token's `DOMAIN_SEPARATOR()` beside it: a transfer the token accepts under the
   * very domain the digest was computed with proves the signature, so the caller can skip recovering it.
   * The separator is read once per asset for all verifications sent in the same JSON-RPC batch. The
   * diagnosis reads are only made when the transfer would fail (see {@link diagnose}).
   */
  async simulate(asset: Address, payload: ExactEvmPayload): Promise<Simulation> {
    const separator = this.domainSeparator(asset);
    try {
      await this.ethCall(asset, transferCallData(payload));
    } catch (error) {
      // The node answered: the call reverted (or failed in the EVM), which the diagnosis explains.
      if (error instanceof JsonRpcError && error.fromNode) {
        return { ok: false, revertData: typeof error.data === "string" ? (error.data as Hex) : undefined };
      }
      throwIfUnreachable(error);
      throw error;
    }
    return { ok: true, domainSeparator: await separator };
  }

  /** `DOMAIN_SEPARATOR()` of `asset`, shared by the calls of one event-loop turn; undefined if unreadable. */
  private domainSeparator(asset: Address): Promise<Hex | undefined> {
    const key = asset.toLowerCase();
    let read = this.separators.get(key);
    if (!read) {
      read = this.ethCall(asset, DOMAIN_SEPARATOR_CALL).then(
        (data) => (data.length === 66 ? data : undefined),
        () => undefined,
      );
      this.separators.set(key, read);
      setImmediate(() => this.separators.delete(key));
    }
    return read;
  }

  /**
   * Why a simulated transfer fails, as the reference facilitator's diagnosis reads it (one Multicall3
   * batch), mapped in its order: authorizationState reverts → not EIP-3009; nonce used; token name or
   * version differs from `extra`; balance below the amount; anything else → simulation failed.
   */
  async diagnose(
    asset: Address,
    payload: ExactEvmPayload,
    expected: { name: string; version: string; amount: bigint },
    failure: Extract<Simulation, { ok: false }>,
  ): Promise<Extract<ChainVerdict, { ok: false }>> {
    const { from, nonce } = payload.authorization;
    const calls = [authorizationStateCall(from, nonce), balanceOfCall(from), NAME_CALL, VERSION_CALL].map(
      (callData) => ({ target: asset, allowFailure: true, callData }),
    );
    let results: readonly Call3Result[];
    try {
      results = decodeAggregate3(await this.ethCall(MULTICALL3_ADDRESS, aggregate3CallData(calls)));
    } catch (error) {
      throwIfUnreachable(error);
      return {
        ok: false,
        reason: "invalid_exact_evm_transaction_simulation_failed",
        message: error instanceof Error ? error.message : String(error),
      };
    }
    const [state, balance, name, version] = results;

    // A read that reverted or returned garbage counts as unknown, as in the reference's diagnosis.
    const decode = <T>(result: { success: boolean; returnData: Hex } | undefined, read: (data: Hex) => T) => {
      if (!result?.success) return undefined;
      try {
        return read(result.returnData);
      } catch {
        return undefined;
      }
    };
    const used = decode(state, (data) =>
      decodeFunctionResult({ abi: mockUsdcAbi, functionName: "authorizationState", data }),
    );
    if (used === undefined) return { ok: false, reason: "invalid_exact_evm_eip3009_not_supported" };
    if (used === true) return { ok: false, reason: "invalid_exact_evm_nonce_already_used" };
    const tokenName = decode(name, (data) =>
      decodeFunctionResult({ abi: mockUsdcAbi, functionName: "name", data }),
    );
    if (tokenName !== undefined && tokenName !== expected.name) {
      return { ok: false, reason: "invalid_exact_evm_token_name_mismatch" };
    }
    const tokenVersion = decode(version, (data) =>
      decodeFunctionResult({ abi: mockUsdcAbi, functionName: "version", data }),
    );
    if (tokenVersion !== undefined && tokenVersion !== expected.version) {
      return { ok: false, reason: "invalid_exact_evm_token_version_mismatch" };
    }
    const held = decode(balance, (data) =>
      decodeFunctionResult({ abi: mockUsdcAbi, functionName: "balanceOf", data }),
    );
    if (held !== undefined && held < expected.amount) {
      return { ok: false, reason: "invalid_exact_evm_insufficient_balance" };
    }
    return {
      ok: false,
      reason: "invalid_exact_evm_transaction_simulation_failed",
      message: revertText(failure.revertData),
    };
  }

  private async ethCall(to: Address, data: Hex): Promise<Hex> {
    const result = await this.rpc.request("eth_call", `[{"to":"${to}","data":"${data}"},"latest"]`);
    if (typeof result !== "string") throw new Error(`eth_call returned ${JSON.stringify(result)}`);
    return result as Hex;
  }
}

/**
 * A simulated transfer: it would succeed (with the token's domain separator, when it has a readable
 * one), or it would revert (with the revert data). A node that cannot be asked throws instead.
 */
export type Simulation = { ok: true; domainSeparator: Hex | undefined } | { ok: false; revertData?: Hex };

/** The revert reason in `data` (viem decodes `Error(string)` and panics), for `invalidMessage`. */
function revertText(data: Hex | undefined): string | undefined {
  if (!data || data === "0x") return undefined;
  try {
    const decoded = decodeErrorResult({ abi: [], data });
    return decoded.args?.map(String).join(", ") ?? decoded.errorName;
  } catch {
    return data;
  }
}

/** The node did not answer (refused, reset, timed out, not JSON-RPC): the payment was not judged. */
function throwIfUnreachable(error: unknown): void {
  if (!isNodeUnreachable(error)) return;
  throw new UpstreamUnavailableError(
    `the chain's node could not be asked: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
