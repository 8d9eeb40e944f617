/**
 * x402 protocol layer: wire shapes (from @x402/core), header codecs, error codes, and the EIP-3009 hot path
 * (EIP-712 digest, secp256k1 sign / recover) hand-written for throughput.
 */

export {
  BATCH_ERROR_PREFIX,
  type BatchPayload,
  batchDomain,
  batchError,
  batchTypes,
  type ChannelConfig,
  type ChannelState,
  channelIdOf,
  claimBatchTypedData,
  type Deposit,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  type Erc3009DepositAuthorization,
  erc3009DepositNonce,
  MAX_WITHDRAW_DELAY,
  MIN_WITHDRAW_DELAY,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  type Permit2DepositAuthorization,
  parseBatchPayload,
  refundTypedData,
  type ServerBatchPayload,
  type Voucher,
  type VoucherClaim,
  voucherDigest,
  voucherTypedData,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "./batch-settlement.ts";
export {
  domainFromRequirements,
  type Eip3009Domain,
  eip712DomainSeparator,
  transferAuthorizationDigest,
  transferWithAuthorizationPrimaryType,
  transferWithAuthorizationTypes,
  typedDataMessage,
} from "./eip712.ts";
export {
  errorCodeFromRevert,
  isX402ErrorCode,
  X402_ERROR_CODES,
  X402Error,
  type X402ErrorCode,
} from "./errors.ts";
export { isUint256String, parseExactEvmPayload } from "./exact-payload.ts";
export {
  DEFAULT_MAX_HEADER_LENGTH,
  type DecodeHeaderOptions,
  decodePaymentRequiredHeader,
  decodePaymentResponseHeader,
  decodePaymentSignatureHeader,
  decodeXPaymentHeader,
  decodeXPaymentResponseHeader,
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
  encodePaymentSignatureHeader,
  encodeXPaymentHeader,
  encodeXPaymentResponseHeader,
  HEADER_KEY,
  type InvalidPaymentHeaderDetails,
  InvalidPaymentHeaderError,
  PAYMENT_REQUIRED_HEADER,
  PAYMENT_RESPONSE_HEADER,
  PAYMENT_SIGNATURE_HEADER,
  X_PAYMENT_HEADER,
  X_PAYMENT_RESPONSE_HEADER,
  type X402HeaderName,
} from "./headers.ts";
export { toHex } from "./hex.ts";
export { keccak256 } from "./keccak.ts";
export { chainIdFromNetwork, networkFromV1, requirementsFromV1, v1NetworkName } from "./networks.ts";
export { randomNonce } from "./nonce.ts";
export {
  isPermit2Payload,
  PERMIT2_ADDRESS,
  PERMIT2_SPENDER,
  type Permit2Authorization,
  type Permit2Kind,
  type Permit2Payload,
  type Permit2Witness,
  parsePermit2Payload,
  permit2Digest,
  permit2TypedData,
  X402_EXACT_PERMIT2_PROXY_ADDRESS,
  X402_UPTO_PERMIT2_PROXY_ADDRESS,
} from "./permit2.ts";
export {
  addressFromPrivateKey,
  authorizationFor,
  InvalidSignatureError,
  type InvalidSignatureReason,
  recoverAddress,
  signatureBackend,
  signDigest,
  signTransferAuthorization,
  splitSignature,
} from "./signature.ts";
export {
  decodeSiwxChallenge,
  encodeSiwxChallenge,
  MalformedSiweError,
  parseSiwxChallenge,
  SIGN_IN_WITH_X,
  SIWX_CHALLENGE_HEADER,
  SIWX_HEADER,
  SIWX_MAX_AGE_MS,
  type SiweFields,
  type SiwxChallenge,
  siweDigest,
  siweMessage,
} from "./siwx.ts";
export type * from "./types.ts";
