import type { Address, Hex } from "viem";

export type {
  Network,
  PaymentPayload,
  PaymentRequired,
  PaymentRequirements,
  ResourceInfo,
  SettleRequest,
  SettleResponse,
  SupportedKind,
  SupportedResponse,
  VerifyRequest,
  VerifyResponse,
} from "@x402/core/types";
export type {
  PaymentPayloadV1,
  PaymentRequiredV1,
  PaymentRequirementsV1,
  SettleRequestV1,
  SettleResponseV1,
  SupportedResponseV1,
  VerifyRequestV1,
} from "@x402/core/types/v1";
export type { Address, Hex };

/**
 * The EIP-3009 `TransferWithAuthorization` message as it travels in `PaymentPayload.payload.authorization`:
 * uint256 fields are decimal strings, `nonce` is 32 bytes of hex. Addresses may be checksummed or lowercase.
 */
export type ExactEvmAuthorization = {
  from: Address;
  to: Address;
  value: string;
  validAfter: string;
  validBefore: string;
  nonce: Hex;
};

/**
 * `PaymentPayload.payload` of the `exact` scheme on EVM via EIP-3009. `signature` is a 65-byte ECDSA
 * signature, or EIP-1271 / ERC-6492 bytes for smart wallets. A `type` rather than an interface so it can be
 * assigned to `PaymentPayload.payload: Record<string, unknown>`.
 */
export type ExactEvmPayload = {
  signature: Hex;
  authorization: ExactEvmAuthorization;
};
