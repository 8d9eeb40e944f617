import { type Address, getAddress, type Hash, type Hex, hashTypedData, type TransactionReceipt } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import {
  batchError,
  type ChannelConfig,
  type ChannelState,
  channelIdOf,
  claimBatchTypedData,
  type Network,
  refundTypedData,
  type SettleResponse,
  type VoucherClaim,
} from "../../protocol/index.ts";
import { ReceiptTimeoutError } from "../exact-evm/relayer.ts";
import {
  batchContract,
  claimWithSignatureCallData,
  type DepositCall,
  depositCallData,
  multicallCallData,
  refundWithSignatureCallData,
  settleCallData,
  settledAmount,
} from "./calls.ts";
import type { BatchChain, OnChainChannel } from "./chain.ts";

/** The SDK sends `settle` with this fixed gas limit: its cost is bimodal, an estimate may catch the cheap mode. */
const SETTLE_GAS = 120_000n;
/** Headroom over an estimate: the call's cost does not move between estimate and inclusion. */
const GAS_MARGIN = 50_000n;
/** How long, and how often, a settle waits for the node to show a state its transaction made. */
const STATE_POLL_MS = 2_000;
const STATE_POLL_INTERVAL_MS = 150;
/** Longest node message carried in an `errorMessage`. */
const MAX_MESSAGE = 500;

export type Sent = { ok: true; receipt: TransactionReceipt } | { ok: false; response: SettleResponse };

/**
 * Sends the batch contract's calls from the relayer pool and turns what happens into the SDK's answers:
 * a revert is `failedReason` with the transaction, a send the node refused is `failedReason` without one, a
 * receipt that does not come in time is `settlement_pending` with the transaction.
 */
export class BatchSender {
  constructor(
    private readonly chain: BatchChain,
    readonly network: Network,
  ) {}

  async send(data: Hex, failedReason: string, payer: string | undefined, gas?: bigint): Promise<Sent> {
    let limit = gas;
    if (limit === undefined) {
      const estimate = await this.chain.call(batchContract, data, "eth_estimateGas");
      if (!estimate.ok)
        return { ok: false, response: this.failure(failedReason, "", payer, estimate.message) };
      limit = estimate.gas + GAS_MARGIN;
    }
    const lease = await this.chain.relayers.lease();
    let hash: Hash | "" = "";
    try {
      const sent = await lease.send({ to: batchContract, data, gas: limit });
      hash = sent.hash;
      const receipt = await sent.receipt;
      if (receipt.status !== "success") {
        return { ok: false, response: this.failure(failedReason, receipt.transactionHash, payer) };
      }
      return { ok: true, receipt };
    } catch (error) {
      if (error instanceof ReceiptTimeoutError) {
        return { ok: false, response: this.failure("settlement_pending", error.hash, payer, error.message) };
      }
      return { ok: false, response: this.failure(failedReason, hash, payer, messageOf(error)) };
    }
  }

  /** A transaction that timed out, asked again: mined (its receipt decides), still known (pending), or dropped. */
  async recheck(
    transaction: Hash,
    failedReason: string,
    payer: string | undefined,
  ): Promise<Sent | { ok: "dropped" }> {
    const receipt = await this.chain.client
      .getTransactionReceipt({ hash: transaction })
      .catch(() => undefined);
    if (receipt) {
      return receipt.status === "success"
        ? { ok: true, receipt }
        : { ok: false, response: this.failure(failedReason, transaction, payer) };
    }
    const known = await this.chain.client.getTransaction({ hash: transaction }).catch(() => undefined);
    if (known) return { ok: false, response: this.failure("settlement_pending", transaction, payer) };
    return { ok: "dropped" };
  }

  failure(reason: string, transaction: string, payer: string | undefined, message?: string): SettleResponse {
    return {
      success: false,
      errorReason: reason,
      ...(message ? { errorMessage: message.slice(0, MAX_MESSAGE) } : {}),
      transaction,
      network: this.network,
      ...(payer ? { payer } : {}),
    };
  }
}

export function wireState(channelId: Hex, state: OnChainChannel): ChannelState {
  return {
    channelId,
    balance: state.balance.toString(),
    totalClaimed: state.totalClaimed.toString(),
    withdrawRequestedAt: state.withdrawRequestedAt,
    refundNonce: state.refundNonce.toString(),
  };
}

/**
 * Polls the channel until `done` holds (the node serving reads may lag the one that mined), for at most
 * 2 s as the SDK does; undefined if it never does or cannot be read.
 */
async function pollChannel(
  chain: BatchChain,
  channelId: Hex,
  done: (state: OnChainChannel) => boolean,
): Promise<OnChainChannel | undefined> {
  const deadline = Date.now() + STATE_POLL_MS;
  for (;;) {
    const read = await chain.channel(channelId).catch(() => undefined);
    if (read && done(read.state)) return read.state;
    if (!read || Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, STATE_POLL_INTERVAL_MS));
  }
}

/** Sends a verified deposit; the answer carries the channel as the node shows it once the deposit is in. */
export async function sendDeposit(
  sender: BatchSender,
  chain: BatchChain,
  config: ChannelConfig,
  channelId: Hex,
  amount: bigint,
  call: DepositCall,
  before: OnChainChannel,
): Promise<SettleResponse> {
  const payer = config.payer;
  const sent = await sender.send(
    depositCallData(config, amount, call),
    batchError("deposit_transaction_failed"),
    payer,
  );
  if (!sent.ok) return sent.response;
  return depositAnswer(chain, sender, channelId, amount, sent.receipt.transactionHash, payer, {
    ...before,
    balance: before.balance + amount,
  });
}

/** A mined deposit's answer: the channel once the node shows the deposit, else the expected state. */
export async function depositAnswer(
  chain: BatchChain,
  sender: BatchSender,
  channelId: Hex,
  amount: bigint,
  transaction: Hash,
  payer: string,
  expected: OnChainChannel | undefined,
): Promise<SettleResponse> {
  const min = expected?.balance ?? 0n;
  const state = (await pollChannel(chain, channelId, (s) => s.balance >= min)) ?? expected;
  return {
    success: true,
    transaction,
    network: sender.network,
    payer,
    amount: amount.toString(),
    ...(state ? { extra: { channelState: wireState(channelId, state) } } : {}),
  };
}

/**
 * `claimWithSignature`: the rows as the server sent them, authorized by its signature or, without one, by
 * the facilitator's receiver authorizer (which every row must name); simulated first, as the SDK does.
 */
export async function claim(
  sender: BatchSender,
  chain: BatchChain,
  chainId: number,
  authorizer: PrivateKeyAccount | undefined,
  claims: readonly VoucherClaim[],
  claimAuthorizerSignature: Hex | undefined,
): Promise<SettleResponse> {
  let signature = claimAuthorizerSignature;
  if (!signature) {
    if (!authorizer) return sender.failure(batchError("authorizer_not_configured"), "", undefined);
    for (const row of claims) {
      if (getAddress(row.voucher.channel.receiverAuthorizer) !== authorizer.address) {
        return sender.failure(batchError("authorizer_address_mismatch"), "", undefined);
      }
    }
    signature = await authorizer.signTypedData(claimBatchTypedData(chainId, claims));
  }
  const data = claimWithSignatureCallData(claims, signature);
  const simulated = await chain.call(batchContract, data);
  if (!simulated.ok)
    return sender.failure(batchError("claim_simulation_failed"), "", undefined, simulated.message);
  const sent = await sender.send(data, batchError("claim_transaction_failed"), undefined);
  if (!sent.ok) return sent.response;
  return { success: true, transaction: sent.receipt.transactionHash, network: sender.network };
}

/**
 * `settle(receiver, token)`: refused as `…_nothing_to_settle` when the receiver's claims are all paid out,
 * else simulated and sent with the SDK's fixed gas; the amount is the `Settled` log's.
 */
export async function settle(
  sender: BatchSender,
  chain: BatchChain,
  receiver: Address,
  token: Address,
): Promise<SettleResponse> {
  let totals: { totalClaimed: bigint; totalSettled: bigint } | undefined;
  try {
    totals = await chain.receiver(receiver, token);
  } catch (error) {
    return sender.failure(batchError("rpc_read_failed"), "", undefined, messageOf(error));
  }
  if (!totals) return sender.failure(batchError("rpc_read_failed"), "", undefined);
  if (totals.totalClaimed <= totals.totalSettled) {
    return sender.failure(
      batchError("nothing_to_settle"),
      "",
      undefined,
      "nothing to settle for receiver and token",
    );
  }
  const data = settleCallData(receiver, token);
  const simulated = await chain.call(batchContract, data);
  if (!simulated.ok)
    return sender.failure(batchError("settle_simulation_failed"), "", undefined, simulated.message);
  const sent = await sender.send(data, batchError("settle_transaction_failed"), undefined, SETTLE_GAS);
  if (!sent.ok) return sent.response;
  return {
    success: true,
    transaction: sent.receipt.transactionHash,
    network: sender.network,
    amount: settledAmount(sent.receipt, receiver, token),
  };
}

export type RefundRequest = {
  channelConfig: ChannelConfig;
  amount: string;
  refundNonce: string;
  claims: readonly VoucherClaim[];
  refundAuthorizerSignature?: Hex;
  claimAuthorizerSignature?: Hex;
};

/**
 * `refundWithSignature`, after the server's claim rows in one `multicall` when it sends some: what is
 * refundable is the balance beyond what is (or is about to be) claimed, capped by the request; nothing
 * refundable is `…_refund_no_balance`. Signatures missing from the request are the facilitator
 * authorizer's. The answer's channel is computed, or read back when a withdrawal was pending (a refund may
 * clear it).
 */
export async function refund(
  sender: BatchSender,
  chain: BatchChain,
  chainId: number,
  authorizer: PrivateKeyAccount | undefined,
  request: RefundRequest,
): Promise<SettleResponse> {
  const config = request.channelConfig;
  const payer = config.payer;
  const channelId = channelIdOf(chainId, config);
  const read = await chain.channel(channelId);
  if (!read) {
    // The SDK's read throws here and lands in its catch-all.
    return sender.failure(
      batchError("refund_transaction_failed"),
      "",
      payer,
      "channel state could not be read",
    );
  }
  const before = read.state;
  const requested = BigInt(request.amount);
  let claimedAfter = before.totalClaimed;
  for (const row of request.claims) {
    if (channelIdOf(chainId, row.voucher.channel).toLowerCase() !== channelId.toLowerCase()) continue;
    const total = BigInt(row.totalClaimed);
    if (total > claimedAfter) claimedAfter = total;
  }
  // Undetermined (claims beyond the balance, or a zero request) is left to the simulation, as in the SDK.
  const determined = claimedAfter <= before.balance && requested !== 0n;
  if (determined) {
    const available = before.balance - claimedAfter;
    if ((requested > available ? available : requested) === 0n) {
      return sender.failure(batchError("refund_no_balance"), "", undefined, "Nothing to refund");
    }
  }
  if (!request.refundAuthorizerSignature) {
    if (!authorizer) return sender.failure(batchError("authorizer_not_configured"), "", undefined);
    if (getAddress(config.receiverAuthorizer) !== authorizer.address) {
      return sender.failure(batchError("authorizer_address_mismatch"), "", undefined);
    }
  }
  const nonce = BigInt(request.refundNonce);
  const refundSignature =
    request.refundAuthorizerSignature ??
    (await (authorizer as PrivateKeyAccount).signTypedData(
      refundTypedData(chainId, channelId, nonce, requested),
    ));
  let data = refundWithSignatureCallData(config, requested, nonce, refundSignature);
  if (request.claims.length > 0) {
    let claimSignature = request.claimAuthorizerSignature;
    if (!claimSignature) {
      if (!authorizer) return sender.failure(batchError("authorizer_not_configured"), "", undefined);
      claimSignature = await authorizer.signTypedData(claimBatchTypedData(chainId, request.claims));
    }
    data = multicallCallData([claimWithSignatureCallData(request.claims, claimSignature), data]);
  }
  const simulated = await chain.call(batchContract, data);
  if (!simulated.ok)
    return sender.failure(batchError("refund_simulation_failed"), "", undefined, simulated.message);
  const sent = await sender.send(data, batchError("refund_transaction_failed"), payer);
  if (!sent.ok) return sent.response;

  const lastClaim = request.claims.at(-1);
  const lastTotal = lastClaim ? BigInt(lastClaim.totalClaimed) : before.totalClaimed;
  const claimedNow = lastTotal > before.totalClaimed ? lastTotal : before.totalClaimed;
  const available = before.balance - claimedNow;
  let refunded = requested > available ? available : requested;
  let after: OnChainChannel = {
    balance: before.balance - refunded,
    totalClaimed: claimedNow,
    withdrawRequestedAt: 0,
    refundNonce: before.refundNonce + 1n,
  };
  if (before.withdrawRequestedAt !== 0) {
    const read = await pollChannel(chain, channelId, (s) => s.refundNonce >= nonce + 1n);
    if (read) {
      refunded = before.balance > read.balance ? before.balance - read.balance : 0n;
      after = read;
    }
  }
  return {
    success: true,
    transaction: sent.receipt.transactionHash,
    network: sender.network,
    payer,
    amount: refunded.toString(),
    extra: { channelState: wireState(channelId, after) },
  };
}

/** What identifies a claim batch: the digest its authorizer signs (channels, ceilings, totals). */
export function claimKey(chainId: number, claims: readonly VoucherClaim[]): Hex {
  return hashTypedData(claimBatchTypedData(chainId, claims));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
