import { type Address, type Hex, recoverAddress as recoverWithViem } from "viem";
import { InvalidSignatureError, recoverAddress } from "../protocol/index.ts";
import type { ChainChecks } from "./exact-evm/chain-checks.ts";

/**
 * Whether `signature` recovers to `signer` over `digest` as viem's recovery (the SDK's) decides: native
 * secp256k1 for the usual 65-byte low-s signature, viem for whatever native refuses (a high s, which
 * Permit2 and the SDK accept; a 64-byte compact one), so the answer is viem's at a fraction of its cost.
 */
export async function recoversTo(signer: Address, digest: Hex, signature: Hex): Promise<boolean> {
  try {
    return recoverAddress(digest, signature) === signer.toLowerCase();
  } catch (error) {
    if (!(error instanceof InvalidSignatureError)) throw error;
    try {
      return (await recoverWithViem({ hash: digest, signature })).toLowerCase() === signer.toLowerCase();
    } catch {
      return false;
    }
  }
}

/**
 * The on-chain `SignatureChecker` rule (and the SDK's `verifyTypedDataSignature`): a signer without code
 * must have signed `digest` with 65-byte ECDSA; one with code must accept it by ERC-1271, with no ECDSA
 * fallback (which would accept what the chain refuses).
 */
export async function signedBy(
  checks: ChainChecks,
  signer: Address,
  digest: Hex,
  signature: Hex,
): Promise<boolean> {
  if (await checks.hasCode(signer)) return checks.isValidContractSignature(signer, digest, signature);
  return signature.length === 132 && recoversTo(signer, digest, signature);
}
