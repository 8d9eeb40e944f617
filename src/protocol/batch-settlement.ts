import {
  type Address,
  encodeAbiParameters,
  getAddress,
  type Hex,
  hashTypedData,
  isAddress,
  keccak256 as viemKeccak256,
} from "viem";
import { X402Error } from "./errors.ts";
import { isUint256String } from "./exact-payload.ts";
import { PERMIT2_ADDRESS, type Permit2Authorization } from "./permit2.ts";

/**
 * The `batch-settlement` scheme's protocol facts: the contracts' canonical addresses, the channel and its
 * EIP-712 messages, and the payloads clients and servers send. Shared by our facilitator, server and agents,
 * which must agree with the official SDK byte for byte (channel ids are typed-data digests).
 */

/** x402's payment-channel contract (`@x402/evm`'s `BATCH_SETTLEMENT_ADDRESS`). */
export const X402_BATCH_SETTLEMENT_ADDRESS: Address = "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003";
/** Pulls a deposit by EIP-3009 `receiveWithAuthorization`. */
export const ERC3009_DEPOSIT_COLLECTOR_ADDRESS: Address = "0x4020806089470a89826cB9fB1f4059150b550004";
/** Pulls a deposit by a Permit2 witness transfer; the Permit2 spender of a deposit. */
export const PERMIT2_DEPOSIT_COLLECTOR_ADDRESS: Address = "0x4020425FAf3B746C082C2f942b4E5159887B0005";

/** The contract's bounds on a channel's withdrawal delay, in seconds; the SDK's default is the minimum. */
export const MIN_WITHDRAW_DELAY = 900;
export const MAX_WITHDRAW_DELAY = 2_592_000;

/** The error codes are `invalid_batch_settlement_evm_` + a suffix (x402-schemes §6). */
export const BATCH_ERROR_PREFIX = "invalid_batch_settlement_evm_";
export const batchError = (suffix: string) => `${BATCH_ERROR_PREFIX}${suffix}`;

/** A channel: who pays, who may sign vouchers, who is paid, who authorizes claims and refunds, in what token. */
export type ChannelConfig = {
  payer: Address;
  /** Signs vouchers by plain ECDSA; the zero address means the payer signs (ECDSA or ERC-1271). */
  payerAuthorizer: Address;
  receiver: Address;
  receiverAuthorizer: Address;
  token: Address;
  withdrawDelay: number;
  salt: Hex;
};

/** A voucher: the payer's promise that the receiver may claim up to `maxClaimableAmount` in total. */
export type Voucher = { channelId: Hex; maxClaimableAmount: string; signature: Hex };

export type Erc3009DepositAuthorization = {
  validAfter: string;
  validBefore: string;
  salt: Hex;
  signature: Hex;
};

export type Permit2DepositAuthorization = Omit<Permit2Authorization, "witness"> & {
  witness: { channelId: Hex };
  signature: Hex;
};

export type Deposit = {
  amount: string;
  authorization:
    | { erc3009Authorization: Erc3009DepositAuthorization }
    | { permit2Authorization: Permit2DepositAuthorization };
};

/** What a client sends: a first (or top-up) deposit with its voucher, a voucher alone, or a refund request. */
export type BatchPayload =
  | { type: "deposit"; channelConfig: ChannelConfig; voucher: Voucher; deposit: Deposit }
  | { type: "voucher"; channelConfig: ChannelConfig; voucher: Voucher }
  | { type: "refund"; channelConfig: ChannelConfig; voucher: Voucher; amount?: string };

/** A row of a claim: a voucher's channel and ceiling, its signature, and the cumulative total to claim. */
export type VoucherClaim = {
  voucher: { channel: ChannelConfig; maxClaimableAmount: string };
  signature: Hex;
  totalClaimed: string;
};

/** What a server sends the facilitator on its own behalf (the channel manager's claims, settles and refunds). */
export type ServerBatchPayload =
  | { type: "claim"; claims: VoucherClaim[]; claimAuthorizerSignature?: Hex }
  | { type: "settle"; receiver: Address; token: Address }
  | {
      type: "refund";
      channelConfig: ChannelConfig;
      voucher: Voucher;
      amount: string;
      refundNonce: string;
      claims: VoucherClaim[];
      refundAuthorizerSignature?: Hex;
      claimAuthorizerSignature?: Hex;
    };

/** A channel as the contract holds it, plus what the server has charged against it (`/settle`'s `extra.channelState`). */
export type ChannelState = {
  channelId: Hex;
  balance: string;
  totalClaimed: string;
  withdrawRequestedAt: number;
  refundNonce: string;
  chargedCumulativeAmount?: string;
};

const DOMAIN_NAME = "x402 Batch Settlement";
const DOMAIN_VERSION = "1";

/** The batch contract's EIP-712 domain on `chainId`. */
export function batchDomain(chainId: number) {
  return {
    name: DOMAIN_NAME,
    version: DOMAIN_VERSION,
    chainId,
    verifyingContract: X402_BATCH_SETTLEMENT_ADDRESS,
  } as const;
}

const CHANNEL_CONFIG_TYPE = [
  { name: "payer", type: "address" },
  { name: "payerAuthorizer", type: "address" },
  { name: "receiver", type: "address" },
  { name: "receiverAuthorizer", type: "address" },
  { name: "token", type: "address" },
  { name: "withdrawDelay", type: "uint40" },
  { name: "salt", type: "bytes32" },
] as const;

/** The SDK's `voucherTypes`, `refundTypes` and `claimBatchTypes`, with the channel's own type. */
export const batchTypes = {
  ChannelConfig: CHANNEL_CONFIG_TYPE,
  Voucher: [
    { name: "channelId", type: "bytes32" },
    { name: "maxClaimableAmount", type: "uint128" },
  ],
  Refund: [
    { name: "channelId", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "amount", type: "uint128" },
  ],
  ClaimBatch: [{ name: "claims", type: "ClaimEntry[]" }],
  ClaimEntry: [
    { name: "channelId", type: "bytes32" },
    { name: "maxClaimableAmount", type: "uint128" },
    { name: "totalClaimed", type: "uint128" },
  ],
} as const;

const configMessage = (config: ChannelConfig) => ({
  payer: getAddress(config.payer),
  payerAuthorizer: getAddress(config.payerAuthorizer),
  receiver: getAddress(config.receiver),
  receiverAuthorizer: getAddress(config.receiverAuthorizer),
  token: getAddress(config.token),
  withdrawDelay: config.withdrawDelay,
  salt: config.salt,
});

/** The channel's id: the EIP-712 digest of its config (the contract's `getChannelId`), bound to chain and contract. */
export function channelIdOf(chainId: number, config: ChannelConfig): Hex {
  return hashTypedData({
    domain: batchDomain(chainId),
    types: { ChannelConfig: CHANNEL_CONFIG_TYPE },
    primaryType: "ChannelConfig",
    message: configMessage(config),
  });
}

/** The typed data a voucher signs, for viem's `signTypedData` / `hashTypedData`. */
export function voucherTypedData(chainId: number, channelId: Hex, maxClaimableAmount: bigint) {
  return {
    domain: batchDomain(chainId),
    types: { Voucher: batchTypes.Voucher },
    primaryType: "Voucher",
    message: { channelId, maxClaimableAmount },
  } as const;
}

export function voucherDigest(chainId: number, channelId: Hex, maxClaimableAmount: bigint): Hex {
  return hashTypedData(voucherTypedData(chainId, channelId, maxClaimableAmount));
}

/** The typed data a receiver authorizer signs to let anyone refund `amount` of a channel at its `nonce`. */
export function refundTypedData(chainId: number, channelId: Hex, nonce: bigint, amount: bigint) {
  return {
    domain: batchDomain(chainId),
    types: { Refund: batchTypes.Refund },
    primaryType: "Refund",
    message: { channelId, nonce, amount },
  } as const;
}

/** The typed data a receiver authorizer signs to let anyone submit these claims (`claimWithSignature`). */
export function claimBatchTypedData(chainId: number, claims: readonly VoucherClaim[]) {
  return {
    domain: batchDomain(chainId),
    types: { ClaimBatch: batchTypes.ClaimBatch, ClaimEntry: batchTypes.ClaimEntry },
    primaryType: "ClaimBatch",
    message: {
      claims: claims.map((c) => ({
        channelId: channelIdOf(chainId, c.voucher.channel),
        maxClaimableAmount: BigInt(c.voucher.maxClaimableAmount),
        totalClaimed: BigInt(c.totalClaimed),
      })),
    },
  } as const;
}

/** The ERC-3009 nonce of a deposit: `keccak256(abi.encode(channelId, uint256(salt)))`, as the collector computes it. */
export function erc3009DepositNonce(channelId: Hex, salt: Hex): Hex {
  return viemKeccak256(
    encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [channelId, BigInt(salt)]),
  );
}

function invalid(field: string, expected: string): X402Error {
  return new X402Error("invalid_payload", `payload.${field} must be ${expected}`, { details: { field } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})+$/;

function field(
  record: Record<string, unknown>,
  name: string,
  path: string,
  check: "address" | "uint" | "bytes32" | "bytes",
): void {
  const value = record[name];
  const ok =
    check === "address"
      ? typeof value === "string" && isAddress(value)
      : check === "uint"
        ? isUint256String(value)
        : check === "bytes32"
          ? typeof value === "string" && BYTES32.test(value)
          : typeof value === "string" && HEX_BYTES.test(value);
  if (!ok) {
    const expected = {
      address: "an address (EIP-55 checksummed or lowercase)",
      uint: "a uint256 decimal string",
      bytes32: "32 bytes of 0x-prefixed hex",
      bytes: "0x-prefixed hex bytes",
    }[check];
    throw invalid(`${path}${name}`, expected);
  }
}

function parseConfig(value: unknown): ChannelConfig {
  return parseConfigAt(value, "channelConfig");
}

function parseVoucher(value: unknown): Voucher {
  if (!isRecord(value)) throw invalid("voucher", "an object");
  field(value, "channelId", "voucher.", "bytes32");
  field(value, "maxClaimableAmount", "voucher.", "uint");
  field(value, "signature", "voucher.", "bytes");
  return value as Voucher;
}

function parseDeposit(value: unknown): Deposit {
  if (!isRecord(value)) throw invalid("deposit", "an object");
  field(value, "amount", "deposit.", "uint");
  const { authorization } = value;
  if (!isRecord(authorization)) throw invalid("deposit.authorization", "an object");
  const erc3009 = authorization.erc3009Authorization;
  const permit2 = authorization.permit2Authorization;
  if (isRecord(erc3009) === isRecord(permit2)) {
    throw invalid("deposit.authorization", "exactly one of erc3009Authorization and permit2Authorization");
  }
  if (isRecord(erc3009)) {
    const path = "deposit.authorization.erc3009Authorization.";
    field(erc3009, "validAfter", path, "uint");
    field(erc3009, "validBefore", path, "uint");
    field(erc3009, "salt", path, "bytes32");
    field(erc3009, "signature", path, "bytes");
  } else if (isRecord(permit2)) {
    const path = "deposit.authorization.permit2Authorization.";
    field(permit2, "from", path, "address");
    field(permit2, "spender", path, "address");
    field(permit2, "nonce", path, "uint");
    field(permit2, "deadline", path, "uint");
    field(permit2, "signature", path, "bytes");
    if (!isRecord(permit2.permitted)) throw invalid(`${path}permitted`, "an object");
    field(permit2.permitted, "token", `${path}permitted.`, "address");
    field(permit2.permitted, "amount", `${path}permitted.`, "uint");
    if (!isRecord(permit2.witness)) throw invalid(`${path}witness`, "an object");
    field(permit2.witness, "channelId", `${path}witness.`, "bytes32");
  }
  return value as Deposit;
}

/**
 * Checks a client's `PaymentPayload.payload` for `batch-settlement` and returns it typed, or throws an
 * {@link X402Error} `invalid_payload` naming the first bad field. An unknown `type` is the scheme's own
 * code, `invalid_batch_settlement_evm_payload_type`.
 */
export function parseBatchPayload(payload: unknown): BatchPayload {
  if (!isRecord(payload)) throw invalid("", "an object");
  const { type } = payload;
  if (type !== "deposit" && type !== "voucher" && type !== "refund") {
    throw new X402Error(
      "invalid_payload",
      `payload.type ${JSON.stringify(type)} is not deposit, voucher or refund`,
      { details: { field: "type", code: batchError("payload_type") } },
    );
  }
  parseConfig(payload.channelConfig);
  parseVoucher(payload.voucher);
  if (type === "deposit") parseDeposit(payload.deposit);
  if (type === "refund" && payload.amount !== undefined) field(payload, "amount", "", "uint");
  return payload as BatchPayload;
}

/** EIP-3009's `ReceiveWithAuthorization`: an ERC-3009 deposit lets only the collector (`to`) pull the funds. */
export const receiveWithAuthorizationTypes = {
  ReceiveWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;

/** The terms of an ERC-3009 deposit authorization, uint256s as decimal strings. */
export type Erc3009DepositTerms = {
  from: Address;
  to: Address;
  value: string;
  validAfter: string;
  validBefore: string;
  nonce: Hex;
};

/** The typed data a payer signs so that the ERC3009DepositCollector may pull `value` into a channel. */
export function erc3009DepositTypedData(
  token: { name: string; version: string; chainId: number; verifyingContract: Address },
  terms: Erc3009DepositTerms,
) {
  return {
    domain: token,
    types: receiveWithAuthorizationTypes,
    primaryType: "ReceiveWithAuthorization",
    message: {
      from: terms.from,
      to: terms.to,
      value: BigInt(terms.value),
      validAfter: BigInt(terms.validAfter),
      validBefore: BigInt(terms.validBefore),
      nonce: terms.nonce,
    },
  } as const;
}

function parseClaims(value: unknown, path: string): VoucherClaim[] {
  if (!Array.isArray(value)) throw invalid(path, "an array of voucher claims");
  value.forEach((claim, i) => {
    const at = `${path}[${i}].`;
    if (!isRecord(claim)) throw invalid(`${path}[${i}]`, "an object");
    if (!isRecord(claim.voucher)) throw invalid(`${at}voucher`, "an object");
    parseConfigAt(claim.voucher.channel, `${at}voucher.channel`);
    field(claim.voucher, "maxClaimableAmount", `${at}voucher.`, "uint");
    field(claim, "signature", at, "bytes");
    field(claim, "totalClaimed", at, "uint");
  });
  return value as VoucherClaim[];
}

function parseConfigAt(value: unknown, path: string): ChannelConfig {
  if (!isRecord(value)) throw invalid(path, "an object");
  for (const name of ["payer", "payerAuthorizer", "receiver", "receiverAuthorizer", "token"]) {
    field(value, name, `${path}.`, "address");
  }
  if (!Number.isSafeInteger(value.withdrawDelay) || (value.withdrawDelay as number) < 0) {
    throw invalid(`${path}.withdrawDelay`, "a whole number of seconds");
  }
  field(value, "salt", `${path}.`, "bytes32");
  return value as ChannelConfig;
}

/**
 * Which server-authored action a `/settle` payload is, by the SDK's shape tests (`isBatchSettlement*Payload`)
 * in its order: deposit, claim, enriched refund, settle; undefined for anything else (a plain voucher, a
 * refund without `amount`/`refundNonce`/`claims`), which the facilitator answers `…_payload_type`.
 */
export function batchSettleActionOf(payload: unknown): "deposit" | "claim" | "refund" | "settle" | undefined {
  if (!isRecord(payload)) return undefined;
  const voucherFields = (v: unknown) =>
    isRecord(v) && "channelId" in v && "maxClaimableAmount" in v && "signature" in v;
  if (
    payload.type === "deposit" &&
    "channelConfig" in payload &&
    voucherFields(payload.voucher) &&
    isRecord(payload.deposit) &&
    typeof payload.deposit.amount === "string" &&
    isRecord(payload.deposit.authorization)
  ) {
    return "deposit";
  }
  if (payload.type === "claim" && "claims" in payload) return "claim";
  if (
    payload.type === "refund" &&
    "channelConfig" in payload &&
    voucherFields(payload.voucher) &&
    "amount" in payload &&
    "refundNonce" in payload &&
    "claims" in payload
  ) {
    return "refund";
  }
  if (payload.type === "settle" && "receiver" in payload && "token" in payload) return "settle";
  return undefined;
}

/**
 * Checks a server-authored `/settle` payload (claim, settle, enriched refund) and returns it typed, or
 * throws an {@link X402Error} `invalid_payload` naming the first bad field.
 */
export function parseServerBatchPayload(payload: unknown): ServerBatchPayload {
  if (!isRecord(payload)) throw invalid("", "an object");
  if (payload.type === "claim") {
    parseClaims(payload.claims, "claims");
    if (payload.claimAuthorizerSignature !== undefined)
      field(payload, "claimAuthorizerSignature", "", "bytes");
  } else if (payload.type === "settle") {
    field(payload, "receiver", "", "address");
    field(payload, "token", "", "address");
  } else if (payload.type === "refund") {
    parseConfig(payload.channelConfig);
    parseVoucher(payload.voucher);
    field(payload, "amount", "", "uint");
    field(payload, "refundNonce", "", "uint");
    parseClaims(payload.claims, "claims");
    for (const name of ["refundAuthorizerSignature", "claimAuthorizerSignature"]) {
      if (payload[name] !== undefined) field(payload, name, "", "bytes");
    }
  } else {
    throw new X402Error(
      "invalid_payload",
      `payload.type ${JSON.stringify(payload.type)} is not claim, settle or refund`,
      {
        details: { field: "type", code: batchError("payload_type") },
      },
    );
  }
  return payload as ServerBatchPayload;
}

/**
 * The typed data a Permit2 deposit signs: a witness transfer of the deposit to the Permit2DepositCollector
 * (the spender), its witness the channel, as the collector rebuilds it (`DEPOSIT_WITNESS_TYPE_STRING`).
 */
export function permit2DepositTypedData(
  chainId: number,
  authorization: Pick<
    Permit2DepositAuthorization,
    "permitted" | "spender" | "nonce" | "deadline" | "witness"
  >,
) {
  const { permitted, witness } = authorization;
  return {
    domain: { name: "Permit2", chainId, verifyingContract: PERMIT2_ADDRESS },
    types: {
      PermitWitnessTransferFrom: [
        { name: "permitted", type: "TokenPermissions" },
        { name: "spender", type: "address" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
        { name: "witness", type: "DepositWitness" },
      ],
      TokenPermissions: [
        { name: "token", type: "address" },
        { name: "amount", type: "uint256" },
      ],
      DepositWitness: [{ name: "channelId", type: "bytes32" }],
    },
    primaryType: "PermitWitnessTransferFrom",
    message: {
      permitted: { token: getAddress(permitted.token), amount: BigInt(permitted.amount) },
      spender: getAddress(authorization.spender),
      nonce: BigInt(authorization.nonce),
      deadline: BigInt(authorization.deadline),
      witness: { channelId: witness.channelId },
    },
  } as const;
}
