import {
  BaseError,
  BlockNotFoundError,
  type Hash,
  type Hex,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
} from "viem";
import type { RelayerClient } from "./relayer.ts";
import { isNodeUnreachable } from "./rpc.ts";

type Mined = { hash: Hash; serialized: Hex; blockNumber: bigint; blockHash: Hash };

/** What became of a settlement a reorg took out of the chain. */
export type ReorgEvent =
  | { hash: Hash; outcome: "resubmitted"; blockNumber: bigint }
  | { hash: Hash; outcome: "lost"; reason: string };

export type ReorgGuardOptions = {
  /** How many blocks below the newest watched one a settlement stays watched (default 16). */
  depth?: number;
  /** How often the newest block holding a watched settlement is compared with the chain (default 200 ms). */
  intervalMs?: number;
  /** How long a resubmitted settlement may take to be mined again (default 10 s). */
  receiptTimeoutMs?: number;
  onEvent?: (event: ReorgEvent) => void;
};

/** Errors that mean the node has no such block or receipt, rather than that it could not be asked. */
const isNotFound = (error: unknown) =>
  error instanceof BlockNotFoundError || error instanceof TransactionReceiptNotFoundError;

/** The node already holds the transaction: as good as sent. */
const ALREADY_KNOWN = /already known|already imported|known transaction/i;

/**
 * Puts back settlements a reorg drops. A settlement mined in a block that is then replaced without it
 * leaves a request served with the payer uncharged, the payee unpaid, and the relayer's nonce one ahead of
 * the chain. The reorg also undid the nonce and the authorization's use, so the same signed bytes are
 * valid again: sent back, they are mined with the same hash (what the ledger and the resource server
 * already hold) and fill the relayer's nonce gap.
 *
 * One block read per interval in the common case: a reorg replaces every block from its fork point up, so
 * if the newest block holding a watched settlement still has its hash, none of them was touched; only
 * when it differs are the receipts read. A reorg deeper than `depth`, or one whose lost nonce a later
 * transaction took first, is reported as `lost`.
 */
export class ReorgGuard {
  private mined: Mined[] = [];
  private readonly timer: NodeJS.Timeout;
  private pass: Promise<void> | undefined;

  constructor(
    private readonly client: RelayerClient,
    private readonly options: ReorgGuardOptions = {},
  ) {
    this.timer = setInterval(() => void this.check(), options.intervalMs ?? 200);
    this.timer.unref();
  }

  /** Watches a settlement that was mined successfully, with the signed bytes that carried it. */
  watch(serialized: Hex, receipt: TransactionReceipt): void {
    this.mined.push({
      hash: receipt.transactionHash,
      serialized,
      blockNumber: receipt.blockNumber,
      blockHash: receipt.blockHash,
    });
  }

  /**
   * Settlements watched: after a pass, those within `depth` blocks of the newest, since a settlement
   * deeper than that is past what the guard can put back, however many were mined before it.
   */
  get watching(): number {
    return this.mined.length;
  }

  /** One pass now (the timer runs them too); concurrent calls share it. */
  check(): Promise<void> {
    this.pass ??= this.compare()
      // A node that cannot be asked now is asked again on the next pass.
      .catch(() => undefined)
      .finally(() => {
        this.pass = undefined;
      });
    return this.pass;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async compare(): Promise<void> {
    const newest = this.mined.reduce<Mined | undefined>(
      (a, b) => (a === undefined || b.blockNumber > a.blockNumber ? b : a),
      undefined,
    );
    if (!newest) return;
    const floor = newest.blockNumber - BigInt(this.options.depth ?? 16);
    this.mined = this.mined.filter((m) => m.blockNumber > floor);
    const block = await this.client
      .getBlock({ blockNumber: newest.blockNumber })
      .catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error)));
    if (block?.hash !== newest.blockHash) await this.repair();
  }

  private async repair(): Promise<void> {
    const watched = this.mined;
    const receipts = await Promise.all(
      watched.map((m) =>
        this.client
          .getTransactionReceipt({ hash: m.hash })
          .catch((error: unknown) => (isNotFound(error) ? undefined : Promise.reject(error))),
      ),
    );
    const dropped: Mined[] = [];
    this.mined = [];
    watched.forEach((m, i) => {
      const receipt = receipts[i];
      // Re-included by the reorg itself: watched in its new block.
      if (receipt) this.mined.push({ ...m, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash });
      else dropped.push(m);
    });
    // Watched in the order they were mined, which per relayer is nonce order: the gaps fill from below.
    for (const m of dropped) {
      try {
        await this.client.sendRawTransaction({ serializedTransaction: m.serialized });
      } catch (error) {
        // Nothing was decided: the next pass tries again.
        if (isNodeUnreachable(error)) {
          this.mined.push(m);
          continue;
        }
        // viem's message is its own summary; the node's words are in `details`.
        const reason =
          error instanceof BaseError ? error.details || error.shortMessage : String((error as Error).message);
        if (!ALREADY_KNOWN.test(reason)) {
          this.report({ hash: m.hash, outcome: "lost", reason });
          continue;
        }
      }
      void this.client
        .waitForTransactionReceipt({ hash: m.hash, timeout: this.options.receiptTimeoutMs ?? 10_000 })
        .then(
          (receipt) => {
            if (receipt.status !== "success") {
              this.report({ hash: m.hash, outcome: "lost", reason: "reverted when mined again" });
              return;
            }
            this.watch(m.serialized, receipt);
            this.report({ hash: m.hash, outcome: "resubmitted", blockNumber: receipt.blockNumber });
          },
          (error: unknown) =>
            this.report({
              hash: m.hash,
              outcome: "lost",
              reason: `not mined again: ${(error as Error).message}`,
            }),
        );
    }
  }

  private report(event: ReorgEvent): void {
    this.options.onEvent?.(event);
  }
}
