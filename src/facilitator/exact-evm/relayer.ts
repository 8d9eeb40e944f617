import {
  type Address,
  type Chain,
  type Client,
  formatTransactionReceipt,
  type Hash,
  type Hex,
  type PublicActions,
  type RpcTransactionReceipt,
  type TransactionReceipt,
  type Transport,
} from "viem";
import { privateKeyToAddress } from "viem/accounts";
import type { JsonRpcBatcher } from "./rpc.ts";
import { signEip1559Call } from "./transaction.ts";

export type RelayerClient = Client<Transport, Chain> & PublicActions<Transport, Chain>;

export type RelayerTransaction = { to: Address; data: Hex; gas: bigint };

/** A transaction that was broadcast; `receipt` settles when it is mined or the wait times out. */
export type SentTransaction = { hash: Hash; from: Address; receipt: Promise<TransactionReceipt> };

/** One key, lent for exactly one transaction; it returns to the pool when that transaction's receipt settles. */
export type RelayerLease = { address: Address; send(tx: RelayerTransaction): Promise<SentTransaction> };

export class ReceiptTimeoutError extends Error {
  override name = "ReceiptTimeoutError";
  constructor(readonly hash: Hash) {
    super(`no receipt for ${hash} yet`);
  }
}

type Key = { address: Address; privateKey: Hex; nonce: number | undefined };

/**
 * The settlement relayers: N keys, each with its own nonce counter and at most one transaction in flight.
 *
 * One transaction per key at a time is what keeps the nonce sequence gap-free: the next nonce is only
 * handed out once the previous transaction is mined or known to be rejected, and after any send error the
 * counter is re-read from the chain. Throughput comes from the number of keys and from batching several
 * settlements into one transaction, not from stacking nonces. Written here, rather than viem's
 * `nonceManager`, because that one never rolls back after a failed send (a gap stalls the key).
 */
export class RelayerPool {
  private readonly idle: Key[];
  private readonly waiters: ((key: Key) => void)[] = [];
  /** Leases waiting for one key in particular, by its address (lowercase). */
  private readonly waitersFor = new Map<string, ((key: Key) => void)[]>();
  private fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint; at: number } | undefined;

  constructor(
    private readonly client: RelayerClient,
    privateKeys: readonly Hex[],
    private readonly options: {
      receiptTimeoutMs: number;
      feeCacheMs?: number;
      /** Told of every transaction mined successfully, with its signed bytes (the reorg guard keeps them). */
      onMined?: (serialized: Hex, receipt: TransactionReceipt) => void;
    },
    /** Sends raw transactions (`eth_sendRawTransactionSync`); one request each, on keep-alive connections. */
    private readonly rpc: JsonRpcBatcher,
  ) {
    if (privateKeys.length === 0) throw new Error("the relayer pool needs at least one key");
    this.idle = privateKeys.map((key) => ({
      address: privateKeyToAddress(key),
      privateKey: key,
      nonce: undefined,
    }));
    this.addresses = this.idle.map((key) => key.address);
  }

  readonly addresses: readonly Address[];

  /** Keys leased out: a transaction of theirs is being sent or waits to be mined. */
  get busy(): number {
    return this.addresses.length - this.idle.length;
  }

  /** Leases waiting for a key. */
  get waiting(): number {
    let n = this.waiters.length;
    for (const queue of this.waitersFor.values()) n += queue.length;
    return n;
  }

  /**
   * Waits for a free key and hands it out for one transaction. Taking the key before taking work off a
   * queue is what makes batching natural: while every key is busy, settlements accumulate.
   */
  async lease(): Promise<RelayerLease> {
    const key = await this.acquire();
    return { address: key.address, send: (tx) => this.sendWith(key, tx) };
  }

  /**
   * Waits for the key of `address` and hands it out for one transaction: for a settlement only that
   * account may send (an `upto` payment names its facilitator, the proxy checks `msg.sender`). Undefined
   * when the pool has no such key.
   */
  async leaseOf(address: Address): Promise<RelayerLease | undefined> {
    const wanted = address.toLowerCase();
    if (!this.addresses.some((a) => a.toLowerCase() === wanted)) return undefined;
    const index = this.idle.findIndex((k) => k.address.toLowerCase() === wanted);
    const key =
      index >= 0
        ? (this.idle.splice(index, 1)[0] as Key)
        : await new Promise<Key>((resolve) => {
            const queue = this.waitersFor.get(wanted) ?? [];
            queue.push(resolve);
            this.waitersFor.set(wanted, queue);
          });
    return { address: key.address, send: (tx) => this.sendWith(key, tx) };
  }

  private async sendWith(key: Key, tx: RelayerTransaction): Promise<SentTransaction> {
    let broadcast = false;
    try {
      key.nonce ??= await this.client.getTransactionCount({
        address: key.address,
        blockTag: "pending",
      });
      const nonce = key.nonce;
      const sign = async (refreshFees: boolean) =>
        signEip1559Call(key.privateKey, {
          chainId: this.client.chain.id,
          nonce,
          to: tx.to,
          data: tx.data,
          gas: tx.gas,
          ...(await this.currentFees(refreshFees)),
        });
      const send = ({ serialized, hash }: { serialized: Hex; hash: Hash }) =>
        this.rpc
          .request("eth_sendRawTransactionSync", `["${serialized}"]`)
          .then((raw) => formatTransactionReceipt(raw as RpcTransactionReceipt))
          .catch((error: unknown) => this.receiptAfterSyncFailure(hash, error));
      const first = await sign(false);
      let hash = first.hash;
      let serialized = first.serialized;
      // anvil takes no timeout parameter on the sync call, so the wait is bounded here.
      const receipt = withTimeout(
        send(first).catch(async (error: unknown) => {
          // The base fee jumped past the cached price: price again from the pending block, send once more
          // with the same nonce (the refused transaction never entered the pool).
          if (!FEE_TOO_LOW.test(error instanceof Error ? error.message : String(error))) throw error;
          const second = await sign(true);
          hash = second.hash;
          serialized = second.serialized;
          return send(second);
        }),
        this.options.receiptTimeoutMs,
        () => new ReceiptTimeoutError(hash),
      );
      broadcast = true;
      key.nonce += 1;
      const settled = receipt.then(
        (r) => {
          this.release(key);
          if (r.status === "success") this.options.onMined?.(serialized, r);
          return r;
        },
        (error: unknown) => {
          // Unknown whether the node kept it: read the nonce again rather than guess.
          key.nonce = undefined;
          this.release(key);
          throw error;
        },
      );
      return { hash: first.hash, from: key.address, receipt: settled };
    } catch (error) {
      if (!broadcast) {
        key.nonce = undefined;
        this.release(key);
      }
      throw error;
    }
  }

  /**
   * `eth_sendRawTransactionSync` returns the receipt in the same round trip, but it also fails when the
   * node merely took longer than its own limit; then the hash tells whether the transaction exists.
   */
  private async receiptAfterSyncFailure(hash: Hash, error: unknown): Promise<TransactionReceipt> {
    const known = await this.client.getTransaction({ hash }).catch(() => undefined);
    if (!known) throw error;
    try {
      return await this.client.waitForTransactionReceipt({ hash, timeout: this.options.receiptTimeoutMs });
    } catch {
      throw new ReceiptTimeoutError(hash);
    }
  }

  private async currentFees(refresh: boolean) {
    const now = Date.now();
    if (refresh || !this.fees || now - this.fees.at > (this.options.feeCacheMs ?? 1_000)) {
      // The pending block's base fee is what the transaction must meet; the latest block's may be far below it.
      const block = await this.client.getBlock({ blockTag: "pending" });
      const base = block.baseFeePerGas ?? 1_000_000_000n;
      // Double the base fee: a few blocks of rising fees do not strand a settlement in the pool.
      this.fees = { maxFeePerGas: base * 2n + 1_000_000n, maxPriorityFeePerGas: 1_000_000n, at: now };
    }
    return { maxFeePerGas: this.fees.maxFeePerGas, maxPriorityFeePerGas: this.fees.maxPriorityFeePerGas };
  }

  private acquire(): Promise<Key> {
    const key = this.idle.pop();
    if (key) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(key: Key): void {
    const own = this.waitersFor.size > 0 ? this.waitersFor.get(key.address.toLowerCase()) : undefined;
    const mine = own?.shift();
    if (own && own.length === 0) this.waitersFor.delete(key.address.toLowerCase());
    if (mine) {
      mine(key);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter(key);
    else this.idle.push(key);
  }
}

/** How nodes refuse a transaction priced under the base fee (anvil, geth, reth). */
const FEE_TOO_LOW =
  /fee per gas less than block base fee|fee cap less than block base fee|underpriced|max fee too low/i;

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
