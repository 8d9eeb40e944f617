import {
  type Address,
  decodeFunctionResult,
  encodeAbiParameters,
  encodeFunctionData,
  getAddress,
  type Hex,
  isAddressEqual,
  parseErc6492Signature,
  parseEventLogs,
  type TransactionReceipt,
} from "viem";
import { x402BatchSettlementAbi } from "../../chain/index.ts";
import {
  type ChannelConfig,
  ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
  PERMIT2_DEPOSIT_COLLECTOR_ADDRESS,
  type VoucherClaim,
  X402_BATCH_SETTLEMENT_ADDRESS,
} from "../../protocol/index.ts";
import type { Eip2612Permit } from "../permit2/proxy-calls.ts";

/**
 * Calldata of the batch contract's calls and of the reads the facilitator makes, with the SDK's argument
 * conventions: checksummed channel fields, an ERC-6492 wrapper taken off a deposit's signature (the
 * collector checks the bare one), collector data laid out as the collectors decode it.
 */

/** The channel as the contract's `ChannelConfig` tuple. */
export function configArg(config: ChannelConfig) {
  return {
    payer: getAddress(config.payer),
    payerAuthorizer: getAddress(config.payerAuthorizer),
    receiver: getAddress(config.receiver),
    receiverAuthorizer: getAddress(config.receiverAuthorizer),
    token: getAddress(config.token),
    withdrawDelay: config.withdrawDelay,
    salt: config.salt,
  };
}

export function claimArgs(claims: readonly VoucherClaim[]) {
  return claims.map((c) => ({
    voucher: {
      channel: configArg(c.voucher.channel),
      maxClaimableAmount: BigInt(c.voucher.maxClaimableAmount),
    },
    signature: c.signature,
    totalClaimed: BigInt(c.totalClaimed),
  }));
}

/** ERC3009DepositCollector's `abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature)`. */
export function erc3009CollectorData(a: {
  validAfter: string;
  validBefore: string;
  salt: Hex;
  signature: Hex;
}): Hex {
  return encodeAbiParameters(
    [{ type: "uint256" }, { type: "uint256" }, { type: "uint256" }, { type: "bytes" }],
    [
      BigInt(a.validAfter),
      BigInt(a.validBefore),
      BigInt(a.salt),
      parseErc6492Signature(a.signature).signature,
    ],
  );
}

/**
 * Permit2DepositCollector's `abi.encode(uint256 nonce, uint256 deadline, bytes permit2Signature, bytes
 * eip2612PermitData)`, the permit data empty or `abi.encode(value, deadline, v, r, s)`.
 */
export function permit2CollectorData(
  a: { nonce: string; deadline: string; signature: Hex },
  permit?: Eip2612Permit,
): Hex {
  const permitData = permit
    ? encodeAbiParameters(
        [
          { type: "uint256" },
          { type: "uint256" },
          { type: "uint8" },
          { type: "bytes32" },
          { type: "bytes32" },
        ],
        [permit.value, permit.deadline, permit.v, permit.r, permit.s],
      )
    : "0x";
  return encodeAbiParameters(
    [{ type: "uint256" }, { type: "uint256" }, { type: "bytes" }, { type: "bytes" }],
    [BigInt(a.nonce), BigInt(a.deadline), parseErc6492Signature(a.signature).signature, permitData],
  );
}

export type DepositCall = { collector: Address; collectorData: Hex };

export const erc3009Collector = getAddress(ERC3009_DEPOSIT_COLLECTOR_ADDRESS);
export const permit2Collector = getAddress(PERMIT2_DEPOSIT_COLLECTOR_ADDRESS);
export const batchContract = getAddress(X402_BATCH_SETTLEMENT_ADDRESS);

export function depositCallData(config: ChannelConfig, amount: bigint, call: DepositCall): Hex {
  return encodeFunctionData({
    abi: x402BatchSettlementAbi,
    functionName: "deposit",
    args: [configArg(config), amount, call.collector, call.collectorData],
  });
}

export function claimWithSignatureCallData(claims: readonly VoucherClaim[], authorizerSignature: Hex): Hex {
  return encodeFunctionData({
    abi: x402BatchSettlementAbi,
    functionName: "claimWithSignature",
    args: [claimArgs(claims), authorizerSignature],
  });
}

export function refundWithSignatureCallData(
  config: ChannelConfig,
  amount: bigint,
  nonce: bigint,
  signature: Hex,
): Hex {
  return encodeFunctionData({
    abi: x402BatchSettlementAbi,
    functionName: "refundWithSignature",
    args: [configArg(config), amount, nonce, signature],
  });
}

export function multicallCallData(calls: readonly Hex[]): Hex {
  return encodeFunctionData({ abi: x402BatchSettlementAbi, functionName: "multicall", args: [calls] });
}

export function settleCallData(receiver: Address, token: Address): Hex {
  return encodeFunctionData({ abi: x402BatchSettlementAbi, functionName: "settle", args: [receiver, token] });
}

/** The reads of a channel's state, in the order the SDK's `readChannelState` makes them. */
export function channelReads(channelId: Hex): Hex[] {
  return [
    encodeFunctionData({ abi: x402BatchSettlementAbi, functionName: "channels", args: [channelId] }),
    encodeFunctionData({
      abi: x402BatchSettlementAbi,
      functionName: "pendingWithdrawals",
      args: [channelId],
    }),
    encodeFunctionData({ abi: x402BatchSettlementAbi, functionName: "refundNonce", args: [channelId] }),
  ];
}

export function receiversCallData(receiver: Address, token: Address): Hex {
  return encodeFunctionData({
    abi: x402BatchSettlementAbi,
    functionName: "receivers",
    args: [receiver, token],
  });
}

export function decodeChannels(data: Hex): { balance: bigint; totalClaimed: bigint } {
  const [balance, totalClaimed] = decodeFunctionResult({
    abi: x402BatchSettlementAbi,
    functionName: "channels",
    data,
  });
  return { balance, totalClaimed };
}

export function decodePendingWithdrawal(data: Hex): number {
  const [, initiatedAt] = decodeFunctionResult({
    abi: x402BatchSettlementAbi,
    functionName: "pendingWithdrawals",
    data,
  });
  return Number(initiatedAt);
}

export function decodeRefundNonce(data: Hex): bigint {
  return decodeFunctionResult({ abi: x402BatchSettlementAbi, functionName: "refundNonce", data });
}

export function decodeReceivers(data: Hex): { totalClaimed: bigint; totalSettled: bigint } {
  const [totalClaimed, totalSettled] = decodeFunctionResult({
    abi: x402BatchSettlementAbi,
    functionName: "receivers",
    data,
  });
  return { totalClaimed, totalSettled };
}

/** What the batch contract's `Settled` log for (receiver, token) in `receipt` says was paid, "0" without one. */
export function settledAmount(receipt: TransactionReceipt, receiver: Address, token: Address): string {
  const logs = parseEventLogs({
    abi: x402BatchSettlementAbi,
    eventName: "Settled",
    logs: receipt.logs.filter((log) => isAddressEqual(log.address, batchContract)),
  });
  const log = logs.find(
    (l) => isAddressEqual(l.args.receiver, receiver) && isAddressEqual(l.args.token, token),
  );
  return log?.args.amount.toString() ?? "0";
}
