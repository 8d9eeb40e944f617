import { decodeErrorResult, type Hex } from "viem";
import { x402ExactPermit2ProxyAbi, x402UptoPermit2ProxyAbi } from "../../chain/index.ts";
import type { Permit2Kind, X402ErrorCode } from "../../protocol/index.ts";

/** Longest send error message carried in a reason, as the SDK's `truncateErrorMessage`. */
const MAX_ERROR_MESSAGE = 500;

/**
 * A settlement that could not be sent, named as the SDK's `mapSettleError` names it: by the proxy error in
 * the message (viem only names errors of the ABI it was given, the proxy's, so a revert raised inside
 * Permit2, a spent nonce say, stays a raw selector and falls to the generic reason), else
 * `invalid_exact_evm_transaction_failed: <message>` (for `upto` too).
 */
export function settleErrorReason(message: string): { reason: X402ErrorCode; message?: string } {
  for (const [needle, reason] of SETTLE_ERRORS) {
    if (message.includes(needle)) return { reason };
  }
  return { reason: "invalid_exact_evm_transaction_failed", message: message.slice(0, MAX_ERROR_MESSAGE) };
}

/** In `mapSettleError`'s order: `Permit2612AmountMismatch` must be tried before `InvalidAmount`. */
const SETTLE_ERRORS: ReadonlyArray<readonly [string, X402ErrorCode]> = [
  ["Permit2612AmountMismatch", "permit2_2612_amount_mismatch"],
  ["InvalidAmount", "permit2_invalid_amount"],
  ["InvalidDestination", "permit2_invalid_destination"],
  ["InvalidOwner", "permit2_invalid_owner"],
  ["PaymentTooEarly", "permit2_payment_too_early"],
  ["InvalidSignature", "invalid_permit2_signature"],
  ["SignatureExpired", "invalid_permit2_signature"],
  ["InvalidNonce", "permit2_invalid_nonce"],
  ["erc20_approval_tx_failed", "erc20_approval_broadcast_failed"],
  ["AmountExceedsPermitted", "upto_amount_exceeds_permitted"],
  ["UnauthorizedFacilitator", "upto_unauthorized_facilitator"],
];

/** What a revert of the proxy's `kind` says, in the words viem would use with the proxy ABI. */
export function revertMessage(kind: Permit2Kind, data: unknown, fallback: string): string {
  if (typeof data !== "string" || data === "0x" || !data.startsWith("0x")) return fallback;
  try {
    const decoded = decodeErrorResult({
      abi: kind === "exact" ? x402ExactPermit2ProxyAbi : x402UptoPermit2ProxyAbi,
      data: data as Hex,
    });
    return `${fallback}: ${decoded.errorName}(${(decoded.args ?? []).map(String).join(", ")})`;
  } catch {
    return `${fallback}: Encoded error signature "${data.slice(0, 10)}" not found on ABI`;
  }
}
