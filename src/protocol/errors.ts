/**
 * x402 error codes (`invalidReason` / `errorReason` / the 402 `error` field).
 *
 * The EVM codes are the strings @x402/evm 2.27's exact facilitator emits, which differ from the v2 spec in
 * places (spec `invalid_exact_evm_payload_signature` vs emitted `invalid_exact_evm_signature`, spec
 * `insufficient_funds` vs emitted `invalid_exact_evm_insufficient_balance`). Both spellings are listed so a
 * report can name what any facilitator sent; ours emits the implementation spelling, which is what SDK
 * hooks and clients see from the reference facilitator. Batch-settlement codes are left out: the devnet's
 * facilitator does not serve that scheme.
 */
export const X402_ERROR_CODES = [
  // Generic codes from the v2 spec (§9); the official TS implementation emits only `invalid_scheme`.
  "insufficient_funds",
  "invalid_network",
  "invalid_payload",
  "invalid_payment_requirements",
  "invalid_scheme",
  "unsupported_scheme",
  "invalid_x402_version",
  "invalid_transaction_state",
  "unexpected_verify_error",
  "unexpected_settle_error",
  "unsupported_payload_type",
  // Exact scheme on EVM, EIP-3009 path: what @x402/evm 2.27 emits.
  "invalid_exact_evm_scheme",
  "invalid_exact_evm_network_mismatch",
  "invalid_exact_evm_missing_eip712_domain",
  "invalid_exact_evm_recipient_mismatch",
  "invalid_exact_evm_signature",
  "invalid_exact_evm_failed_to_parse_signature",
  "invalid_exact_evm_payload_authorization_valid_before",
  "invalid_exact_evm_payload_authorization_valid_after",
  "invalid_exact_evm_payload_authorization_value_mismatch",
  "invalid_exact_evm_authorization_value",
  "invalid_exact_evm_transaction_failed",
  "invalid_exact_evm_transfer_event_mismatch",
  "invalid_exact_evm_token_name_mismatch",
  "invalid_exact_evm_token_version_mismatch",
  "invalid_exact_evm_eip3009_not_supported",
  "invalid_exact_evm_nonce_already_used",
  "invalid_exact_evm_insufficient_balance",
  "invalid_exact_evm_transaction_simulation_failed",
  "asset_not_deployed_contract",
  // Exact scheme on EVM: the spec / legacy v1 spellings of the same checks.
  "invalid_exact_evm_payload_signature",
  "invalid_exact_evm_payload_recipient_mismatch",
  "invalid_exact_evm_payload_authorization_value",
  "invalid_exact_evm_payload_undeployed_smart_wallet",
  // Exact scheme on EVM, Permit2 path (@x402/evm 2.27 exact/facilitator/errors.ts).
  "invalid_permit2_spender",
  "invalid_permit2_recipient_mismatch",
  "permit2_deadline_expired",
  "permit2_not_yet_valid",
  "permit2_amount_mismatch",
  "permit2_token_mismatch",
  "invalid_permit2_signature",
  "permit2_allowance_required",
  "permit2_simulation_failed",
  "permit2_insufficient_balance",
  "permit2_proxy_not_deployed",
  "permit2_invalid_amount",
  "permit2_invalid_destination",
  "permit2_invalid_owner",
  "permit2_payment_too_early",
  "permit2_invalid_nonce",
  "permit2_2612_amount_mismatch",
  // EIP-2612 gas sponsoring of a Permit2 payment.
  "invalid_eip2612_extension_format",
  "eip2612_from_mismatch",
  "eip2612_asset_mismatch",
  "eip2612_spender_not_permit2",
  "eip2612_deadline_expired",
  // ERC-20 approval gas sponsoring of a Permit2 payment (the devnet's facilitator does not offer it).
  "invalid_erc20_approval_extension_format",
  "erc20_approval_from_mismatch",
  "erc20_approval_asset_mismatch",
  "erc20_approval_spender_not_permit2",
  "erc20_approval_tx_wrong_target",
  "erc20_approval_tx_wrong_selector",
  "erc20_approval_tx_wrong_spender",
  "erc20_approval_tx_invalid_calldata",
  "erc20_approval_tx_signer_mismatch",
  "erc20_approval_tx_invalid_signature",
  "erc20_approval_tx_parse_failed",
  "erc20_approval_tx_failed",
  "erc20_approval_broadcast_failed",
  // The upto scheme on EVM (@x402/evm 2.27 upto/facilitator/errors.ts).
  "invalid_upto_evm_scheme",
  "invalid_upto_evm_network_mismatch",
  "invalid_upto_evm_payload_settlement_exceeds_amount",
  "invalid_upto_evm_transaction_failed",
  "upto_amount_exceeds_permitted",
  "upto_unauthorized_facilitator",
  "upto_facilitator_mismatch",
  // Smart wallets and settlement state.
  "eip6492_factory_not_allowed",
  "smart_wallet_deployment_failed",
  "settlement_pending",
  // Sign-In-With-X (@x402/extensions), checked by the resource server rather than a facilitator.
  "invalid_siwx_domain_mismatch",
  "invalid_siwx_uri_mismatch",
  "invalid_siwx_issued_at",
  "invalid_siwx_issued_at_too_old",
  "invalid_siwx_issued_at_in_future",
  "invalid_siwx_expiration_time",
  "invalid_siwx_expired",
  "invalid_siwx_not_before",
  "invalid_siwx_not_yet_valid",
  "invalid_siwx_nonce",
  "invalid_siwx_signature",
  "invalid_siwx_chain_id",
  "invalid_siwx_unsupported_chain",
  "invalid_siwx_malformed_signature",
  "invalid_siwx_verifier_error",
] as const;

export type X402ErrorCode = (typeof X402_ERROR_CODES)[number];

const CODES: ReadonlySet<string> = new Set(X402_ERROR_CODES);

/** True when `value` is one of {@link X402_ERROR_CODES}, e.g. to classify a foreign facilitator's reason. */
export function isX402ErrorCode(value: unknown): value is X402ErrorCode {
  return typeof value === "string" && CODES.has(value);
}

/** Base of every error this module throws: an x402 code a caller can put on the wire, plus details for logs. */
export class X402Error<Details extends object = Record<string, unknown>> extends Error {
  override name = "X402Error";
  readonly code: X402ErrorCode;
  readonly details: Details | undefined;

  constructor(code: X402ErrorCode, message: string, options: { details?: Details; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

type RevertCode =
  | "invalid_exact_evm_payload_authorization_valid_before"
  | "invalid_exact_evm_payload_authorization_valid_after"
  | "invalid_exact_evm_nonce_already_used"
  | "invalid_exact_evm_insufficient_balance"
  | "invalid_exact_evm_signature"
  | "invalid_exact_evm_transaction_failed";

// Same patterns, same order as @x402/evm 2.27 `parseEip3009TransferError`, so a settle that reverts on our
// devnet reports the code the reference facilitator would. Order matters: "authorization is not yet valid"
// must not fall through to a later pattern.
const REVERT_PATTERNS: ReadonlyArray<readonly [RegExp, RevertCode]> = [
  [
    /authorization.*(expired|valid before)|AuthorizationExpired/i,
    "invalid_exact_evm_payload_authorization_valid_before",
  ],
  [
    /authorization.*not.*valid|AuthorizationNotYetValid/i,
    "invalid_exact_evm_payload_authorization_valid_after",
  ],
  [
    /authorization.*used|AuthorizationAlreadyUsed|AuthorizationUsedOrCanceled/i,
    "invalid_exact_evm_nonce_already_used",
  ],
  [
    /transfer.*exceeds.*balance|insufficient.*balance|ERC20InsufficientBalance/i,
    "invalid_exact_evm_insufficient_balance",
  ],
  [/invalid.*signature|SignerMismatch|InvalidSignatureV|InvalidSignatureS/i, "invalid_exact_evm_signature"],
];

/**
 * Maps the message of an error thrown while broadcasting `transferWithAuthorization` to the x402 code the
 * reference facilitator reports for it; anything unrecognised is `invalid_exact_evm_transaction_failed`.
 */
export function errorCodeFromRevert(message: string): RevertCode {
  for (const [pattern, code] of REVERT_PATTERNS) {
    if (pattern.test(message)) return code;
  }
  return "invalid_exact_evm_transaction_failed";
}
