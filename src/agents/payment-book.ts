import type { Address, Hex } from "viem";
import type { Network } from "../protocol/index.ts";
import { Interned, RecordChunks, readHex32, writeHex32 } from "./compact.ts";
import type { PaymentPath } from "./payment-methods.ts";

/**
 * What one authorization the agent signed is for, in EIP-3009's terms whatever its path (a Permit2
 * payment's permitted amount is `amount`, its deadline `validBefore`, its uint256 nonce `nonce` in hex).
 */
export type SignedPayment = {
  /** How it pays: which contract's nonce it spends, and how it is cancelled. */
  path: PaymentPath;
  /** The URL the payment was sent to (after redirects), without its fragment. */
  url: string;
  /** What `maxPaymentsPerUrl` counts it under: see `SpendingPolicy.perUrlKey`. */
  resourceKey: string;
  x402Version: 1 | 2;
  /** The authorization's value, in atomic units of `asset`. */
  amount: bigint;
  asset: Address;
  network: Network;
  /** The authorization's `to`. */
  payTo: Address;
  nonce: Hex;
  /** Unix seconds: the token takes the authorization only in a block whose timestamp is below it. */
  validBefore: bigint;
};

/** A payment the agent's books count as spent: `agent.spent` is the sum of these. */
export type PaymentRecord = SignedPayment & {
  transaction?: Hex;
  /**
   * `server`: the server served the paid request. `chain`: it did not, but the chain shows the
   * authorization used (`agent.reconcile`): money gone without service.
   */
  confirmedBy: "server" | "chain";
  /** `Date.now()` when the server answered, or when the chain was found to have used it. */
  at: number;
};

/** What a resource's payments have in common: stored once per resource, price and recipient. */
type Shared = Omit<SignedPayment, "nonce" | "validBefore">;

// One payment's record: shared part (u32), flags (u8), validBefore and time (f64), nonce, transaction.
const SHARED = 0;
const FLAGS = 4;
const VALID_BEFORE = 8;
const AT = 16;
const NONCE = 24;
const TRANSACTION = 56;
const RECORD_BYTES = 88;

const MAX_EXACT_DOUBLE = BigInt(Number.MAX_SAFE_INTEGER);

const BY_CHAIN = 1;
const HAS_TRANSACTION = 2;
/** Fields the record cannot hold as they are (a nonce in capitals, a validBefore past 2^53): kept whole. */
const WHOLE = 4;

/**
 * An agent's payments, the books behind `agent.payments`, in a form that does not grow the harness by a
 * kilobyte per payment over a long run: what a resource's payments share (URL, recipient, asset, amount)
 * is interned, and each payment adds a fixed 88-byte record. The records are built as objects only when
 * asked for.
 */
export class PaymentBook {
  private readonly records = new RecordChunks(RECORD_BYTES);
  private readonly shared = new Interned<Shared>();
  private readonly whole = new Map<number, PaymentRecord>();

  add(
    payment: SignedPayment,
    transaction: PaymentRecord["transaction"],
    confirmedBy: PaymentRecord["confirmedBy"],
    at: number,
  ): void {
    const index = this.records.size;
    const [buffer, offset] = this.records.append();
    const { nonce, validBefore, ...rest } = payment;
    const fits =
      validBefore <= MAX_EXACT_DOUBLE &&
      writeHex32(buffer, offset + NONCE, nonce) &&
      (transaction === undefined || writeHex32(buffer, offset + TRANSACTION, transaction));
    if (!fits) {
      buffer[offset + FLAGS] = WHOLE;
      this.whole.set(index, { ...payment, ...(transaction ? { transaction } : {}), confirmedBy, at });
      return;
    }
    const key = JSON.stringify([
      rest.path,
      rest.url,
      rest.resourceKey,
      rest.x402Version,
      `${rest.amount}`,
      rest.asset,
      rest.network,
      rest.payTo,
    ]);
    buffer.writeUInt32LE(
      this.shared.id(key, () => rest),
      offset + SHARED,
    );
    buffer[offset + FLAGS] = (confirmedBy === "chain" ? BY_CHAIN : 0) | (transaction ? HAS_TRANSACTION : 0);
    buffer.writeDoubleLE(Number(validBefore), offset + VALID_BEFORE);
    buffer.writeDoubleLE(at, offset + AT);
  }

  /** Every payment, oldest first, as new objects. */
  list(): PaymentRecord[] {
    const out: PaymentRecord[] = [];
    for (let index = 0; index < this.records.size; index++) out.push(this.get(index));
    return out;
  }

  private get(index: number): PaymentRecord {
    const [buffer, offset] = this.records.at(index);
    const flags = buffer[offset + FLAGS] ?? 0;
    if (flags & WHOLE) return this.whole.get(index) as PaymentRecord;
    return {
      ...this.shared.get(buffer.readUInt32LE(offset + SHARED)),
      nonce: readHex32(buffer, offset + NONCE),
      validBefore: BigInt(buffer.readDoubleLE(offset + VALID_BEFORE)),
      ...(flags & HAS_TRANSACTION ? { transaction: readHex32(buffer, offset + TRANSACTION) } : {}),
      confirmedBy: flags & BY_CHAIN ? "chain" : "server",
      at: buffer.readDoubleLE(offset + AT),
    };
  }
}
