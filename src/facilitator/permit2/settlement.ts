import { type Address, type Hash, type Hex, keccak256, type TransactionReceipt } from "viem";
import type { Permit2Kind, Permit2Payload, X402ErrorCode } from "../../protocol/index.ts";
import { ReceiptTimeoutError, type RelayerClient, type RelayerPool } from "../exact-evm/relayer.ts";
import type { SettlementOutcome } from "../exact-evm/settlement-batcher.ts";
import { SettlementLedger } from "../exact-evm/settlement-ledger.ts";
import { proxyOf, type SettleCall, settleCallData } from "./proxy-calls.ts";
import { revertMessage, settleErrorReason } from "./settle-errors.ts";
import type { Permit2Simulation } from "./simulation.ts";

/** A reverted settlement, per scheme, as the SDK reports it (`failedStatusReason`). */
const REVERTED: Readonly<Record<Permit2Kind, X402ErrorCode>> = {
  exact: "invalid_exact_evm_transaction_failed",
  upto: "invalid_upto_evm_transaction_failed",
};

/** Gas headroom over the estimate: a settlement's cost does not move between estimate and inclusion. */
const GAS_MARGIN = 20_000n;

/**
 * Sends Permit2 settlements from the relayer keys, at most one per payment. A payment is keyed by what
 * Permit2 spends, its (owner, nonce): presented again, one after the other or concurrently, in `exact` or
 * `upto`, it joins the first attempt and gets its outcome, where a second send would only revert on the
 * spent nonce. As in the EIP-3009 module, a failure is forgotten (a retry may succeed), a
 * `settlement_pending` one is kept and checked again, never raced by a second broadcast.
 *
 * Each settlement is first estimated (`eth_estimateGas`) from the account that will send it, as viem's
 * `writeContract` does for the SDK: a payment that would revert costs no gas, and its revert is named as
 * the SDK names it.
 */
export class Permit2Settlements {
  private readonly ledger = new SettlementLedger();
  /** What the first settle of an upto payment asked for, by ledger key: a repeat is answered with it. */
  private readonly amounts = new Map<Hex, bigint>();

  constructor(
    private readonly client: RelayerClient,
    private readonly relayers: RelayerPool,
    private readonly simulation: Permit2Simulation,
  ) {}

  /** Forgets the payments whose Permit2 deadline has passed by `nowSeconds`: Permit2 refuses them anyway. */
  forgetExpired(nowSeconds: number): void {
    this.ledger.sweep(nowSeconds);
    for (const key of this.amounts.keys()) if (!this.ledger.get(key)) this.amounts.delete(key);
  }

  /** Whether a settlement of this payment is under way or done (and remembered). */
  has(payload: Permit2Payload): boolean {
    return this.ledger.get(paymentKey(payload)) !== undefined;
  }

  /**
   * Settles `payload` once. `sender` is the one account allowed to send it (upto's witness facilitator),
   * else any free key sends. `duplicate` says the answer is an earlier attempt's, and `amount` what that
   * attempt (upto) transfers, which a repeat asking for another amount does not change.
   */
  async settle(
    kind: Permit2Kind,
    payload: Permit2Payload,
    call: SettleCall,
    sender?: Address,
  ): Promise<{ outcome: SettlementOutcome; duplicate: boolean; amount: bigint | undefined }> {
    const key = paymentKey(payload);
    const earlier = this.ledger.get(key);
    if (!earlier) {
      const deadline = Number(payload.permit2Authorization.deadline);
      const attempt = this.attempt(kind, payload, call, sender);
      if (kind === "upto" && call.amount !== undefined) this.amounts.set(key, call.amount);
      const outcome = await this.ledger.record(key, deadline, attempt);
      if (!this.ledger.get(key)) this.amounts.delete(key);
      return { outcome, duplicate: false, amount: call.amount };
    }
    const first = { ...call, amount: this.amounts.get(key) ?? call.amount };
    let outcome = await earlier;
    if (!outcome.ok && outcome.reason === "settlement_pending" && outcome.transaction) {
      outcome = await this.ledger.resolvePending(
        key,
        this.recheck(kind, outcome.transaction, payload, first, sender),
      );
    }
    return { outcome, duplicate: true, amount: first.amount };
  }

  private async attempt(
    kind: Permit2Kind,
    payload: Permit2Payload,
    call: SettleCall,
    sender: Address | undefined,
  ): Promise<SettlementOutcome> {
    const proxy = proxyOf(kind);
    const data = settleCallData(kind, payload, call);
    const from = sender ?? (this.relayers.addresses[0] as Address);
    const estimate = await this.simulation.estimateGas(from, proxy, data);
    if (!estimate.ok) {
      return {
        ok: false,
        ...settleErrorReason(revertMessage(kind, estimate.data, estimate.message)),
        transaction: "",
      };
    }
    const lease = sender ? await this.relayers.leaseOf(sender) : await this.relayers.lease();
    if (!lease) return { ok: false, reason: "upto_unauthorized_facilitator", transaction: "" };
    try {
      const sent = await lease.send({ to: proxy, data, gas: estimate.gas + GAS_MARGIN });
      return outcomeOf(kind, await sent.receipt);
    } catch (error) {
      if (error instanceof ReceiptTimeoutError) {
        return { ok: false, reason: "settlement_pending", transaction: error.hash };
      }
      // The node refused the transaction (the pool reads back any it did take): nothing is on its way, as
      // when viem's send throws for the SDK.
      return {
        ok: false,
        ...settleErrorReason(error instanceof Error ? error.message : String(error)),
        transaction: "",
      };
    }
  }

  /**
   * A settlement that timed out waiting for its receipt, asked again: the receipt decides if it has come; a
   * transaction the node still knows is still pending; one the node has dropped is sent once more (Permit2's
   * nonce lets at most one of the two move money).
   */
  private async recheck(
    kind: Permit2Kind,
    transaction: Hash,
    payload: Permit2Payload,
    call: SettleCall,
    sender: Address | undefined,
  ): Promise<SettlementOutcome> {
    const receipt = await this.client.getTransactionReceipt({ hash: transaction }).catch(() => undefined);
    if (receipt) return outcomeOf(kind, receipt);
    const known = await this.client.getTransaction({ hash: transaction }).catch(() => undefined);
    if (known) return { ok: false, reason: "settlement_pending", transaction };
    return this.attempt(kind, payload, call, sender);
  }
}

function outcomeOf(kind: Permit2Kind, receipt: TransactionReceipt): SettlementOutcome {
  return receipt.status === "success"
    ? { ok: true, transaction: receipt.transactionHash }
    : { ok: false, reason: REVERTED[kind], transaction: receipt.transactionHash };
}

/** What Permit2 spends for a payment: the owner's unordered nonce. */
function paymentKey(payload: Permit2Payload): Hex {
  const { from, nonce } = payload.permit2Authorization;
  return keccak256(`0x${from.slice(2).toLowerCase()}${BigInt(nonce).toString(16).padStart(64, "0")}`);
}
