import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Hex } from "viem";
import type { ChannelConfig } from "../../protocol/batch-settlement.ts";

/** A request that passed verification and holds the channel until its charge is decided. */
export type ChannelReservation = { id: string; expiresAt: number };

/**
 * What the server knows of one channel: what it has charged, the latest voucher covering it, and the
 * contract's state as last mirrored from the facilitator. Amounts are decimal strings so that a record
 * is plain JSON.
 */
export type ChannelRecord = {
  channelId: Hex;
  channelConfig: ChannelConfig;
  chargedCumulativeAmount: string;
  /** The highest voucher received and its signature: what a claim submits. */
  signedMaxClaimable: string;
  signature: Hex;
  balance: string;
  totalClaimed: string;
  withdrawRequestedAt: number;
  refundNonce: string;
  /** Epoch ms of the last time the on-chain fields came from the facilitator or a transaction of ours. */
  onchainSyncedAt?: number;
  /** Epoch ms of the last request on the channel, for idle refunds. */
  lastRequestAt: number;
  reservation?: ChannelReservation;
};

/**
 * Where channel records live. `update` is atomic per channel: updates of one channel run one at a time,
 * each seeing the previous one's result; returning `undefined` deletes the record.
 */
export interface ChannelStore {
  get(channelId: Hex): Promise<ChannelRecord | undefined>;
  list(): Promise<ChannelRecord[]>;
  update(
    channelId: Hex,
    change: (current: ChannelRecord | undefined) => ChannelRecord | undefined,
  ): Promise<ChannelRecord | undefined>;
}

/** One chain of promises per key: a store's per-channel serialization. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

const RECORD_FILE = /^0x[0-9a-f]{64}\.json$/;

const keyOf = (channelId: Hex) => channelId.toLowerCase() as Hex;

/** Records in process memory: lost on restart, which forfeits every unclaimed voucher. */
export class MemoryChannelStore implements ChannelStore {
  private readonly records = new Map<string, ChannelRecord>();

  async get(channelId: Hex): Promise<ChannelRecord | undefined> {
    return this.records.get(keyOf(channelId));
  }

  async list(): Promise<ChannelRecord[]> {
    return [...this.records.values()];
  }

  async update(
    channelId: Hex,
    change: (current: ChannelRecord | undefined) => ChannelRecord | undefined,
  ): Promise<ChannelRecord | undefined> {
    // The change is synchronous and so is the map: nothing can interleave, no queue is needed.
    const key = keyOf(channelId);
    const next = change(this.records.get(key));
    if (next) this.records.set(key, next);
    else this.records.delete(key);
    return next;
  }
}

/**
 * One JSON file per channel in `directory`, written to a temporary file and renamed over the old one, so
 * a crash leaves either the old record or the new one, never half of one. Only one process may use a
 * directory: the per-channel serialization is in memory. For the same reason a reservation found when the
 * store opens belongs to a request of a process that is gone, and is dropped rather than left to block
 * its channel until it expires.
 */
export class FileChannelStore implements ChannelStore {
  private readonly queue = new KeyedQueue();
  private ready: Promise<unknown> | undefined;
  private writes = 0;

  constructor(readonly directory: string) {}

  async get(channelId: Hex): Promise<ChannelRecord | undefined> {
    await this.init();
    return this.read(this.fileOf(channelId));
  }

  async list(): Promise<ChannelRecord[]> {
    await this.init();
    const names = (await readdir(this.directory)).filter((name) => RECORD_FILE.test(name));
    const records = await Promise.all(names.map((name) => this.read(join(this.directory, name))));
    return records.filter((record): record is ChannelRecord => record !== undefined);
  }

  async update(
    channelId: Hex,
    change: (current: ChannelRecord | undefined) => ChannelRecord | undefined,
  ): Promise<ChannelRecord | undefined> {
    await this.init();
    const file = this.fileOf(channelId);
    return this.queue.run(file, async () => {
      const current = await this.read(file);
      const next = change(current);
      if (next === current) return next;
      if (!next) {
        await rm(file, { force: true });
        return next;
      }
      await this.write(file, next);
      return next;
    });
  }

  private init(): Promise<unknown> {
    this.ready ??= (async () => {
      await mkdir(this.directory, { recursive: true });
      for (const name of await readdir(this.directory)) {
        const file = join(this.directory, name);
        if (name.endsWith(".tmp")) {
          // A write a crash interrupted: the record it was replacing is still whole.
          await rm(file, { force: true });
          continue;
        }
        if (!RECORD_FILE.test(name)) continue;
        const record = await this.read(file);
        if (record?.reservation) {
          const { reservation: _, ...free } = record;
          await this.write(file, free);
        }
      }
    })();
    return this.ready;
  }

  private async write(file: string, record: ChannelRecord): Promise<void> {
    const temporary = `${file}.${process.pid}.${++this.writes}.tmp`;
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, file);
  }

  private fileOf(channelId: Hex): string {
    return join(this.directory, `${keyOf(channelId)}.json`);
  }

  private async read(file: string): Promise<ChannelRecord | undefined> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    return JSON.parse(text) as ChannelRecord;
  }
}

/** What the `channelStore` paywall option names: memory (the default), a directory, or a store of one's own. */
export type ChannelStoreOption = "memory" | { directory: string } | ChannelStore;

export function openChannelStore(option: ChannelStoreOption = "memory"): ChannelStore {
  if (option === "memory") return new MemoryChannelStore();
  if ("directory" in option && typeof option.directory === "string" && !("update" in option)) {
    return new FileChannelStore(option.directory);
  }
  return option as ChannelStore;
}
