import { type Address, decodeErrorResult, decodeFunctionResult, encodeFunctionData, type Hex } from "viem";
import { MULTICALL3_ADDRESS, mockUsdcAbi, multicall3Abi } from "../../chain/index.ts";
import type { ExactEvmPayload, X402ErrorCode } from "../../protocol/index.ts";
import type { RelayerClient } from "./relayer.ts";
import { transferCallData } from "./settlement-batcher.ts";

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
 * The chain-facing half of verification. Everything the reference facilitator learns from the chain on the
 * happy path (is the asset a contract, would `transferWithAuthorization` succeed, and if not, why) is asked
 * in one `eth_call`: a Multicall3 `aggregate3` of `authorizationState`, `balanceOf`, `name`, `version` and,
 * last so the reads see the state before it, the transfer itself.
 */
export class ChainChecks {
  private readonly assetCode = new Map<string, number>();

  constructor(private readonly client: RelayerClient) {}

  async hasCode(address: Address): Promise<boolean> {
    const code = await this.client.getCode({ address });
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
    } catch {
      return false;
    }
  }

  /**
   * Simulates the transfer and, in the same call, reads what the reference facilitator's failure diagnosis
   * reads, mapped in its order: authorizationState reverts → not EIP-3009; nonce used; token name or
   * version differs from `extra`; balance below the amount; anything else → simulation failed.
   */
  async simulateTransfer(
    asset: Address,
    payload: ExactEvmPayload,
    expected: { name: string; version: string; amount: bigint },
  ): Promise<ChainVerdict> {
    const { from, nonce } = payload.authorization;
    const reads = [
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "authorizationState", args: [from, nonce] }),
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "balanceOf", args: [from] }),
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "name" }),
      encodeFunctionData({ abi: mockUsdcAbi, functionName: "version" }),
    ];
    const calls = [...reads, transferCallData(payload)].map((callData) => ({
      target: asset,
      allowFailure: true,
      callData,
    }));
    let results: readonly { success: boolean; returnData: Hex }[];
    try {
      const { data } = await this.client.call({
        to: MULTICALL3_ADDRESS,
        data: encodeFunctionData({ abi: multicall3Abi, functionName: "aggregate3", args: [calls] }),
      });
      results = decodeFunctionResult({ abi: multicall3Abi, functionName: "aggregate3", data: data ?? "0x" });
    } catch (error) {
      return {
        ok: false,
        reason: "invalid_exact_evm_transaction_simulation_failed",
        message: error instanceof Error ? error.message : String(error),
      };
    }
    const [state, balance, name, version, transfer] = results;
    if (transfer?.success) return { ok: true };

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
      message: revertText(transfer?.returnData),
    };
  }
}

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
