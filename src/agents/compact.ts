import type { Hex } from "viem";
import { writeHex } from "../protocol/hex.ts";

/**
 * Fixed-size records in chunks of off-heap memory, for books that gain one entry per payment: a run of a
 * few hundred thousand payments then costs their bytes, where as many objects (with their strings and
 * bigints) cost a kilobyte each and grow the JS heap the garbage collector walks. Chunks rather than one
 * growing buffer, so that growth copies nothing; they double from a few records up to `maxPerChunk`, so
 * that a thousand agents with a handful of payments each do not hold a thousand large empty chunks.
 */
export class RecordChunks {
  private readonly chunks: Buffer[] = [];
  /** The index of each chunk's first record. */
  private readonly starts: number[] = [];
  private capacity = 0;
  size = 0;

  constructor(
    private readonly recordBytes: number,
    private readonly maxPerChunk = 1024,
    private readonly firstChunk = 16,
  ) {}

  /** A new zeroed record: its chunk and the offset where it starts. */
  append(): [Buffer, number] {
    if (this.size === this.capacity) {
      const records = Math.min(this.firstChunk * 2 ** this.chunks.length, this.maxPerChunk);
      this.chunks.push(Buffer.alloc(records * this.recordBytes));
      this.starts.push(this.capacity);
      this.capacity += records;
    }
    this.size += 1;
    return this.at(this.size - 1);
  }

  /** Record `index` (below `size`): its chunk and the offset where it starts. */
  at(index: number): [Buffer, number] {
    if (!(index >= 0 && index < this.size)) throw new RangeError(`no record ${index} of ${this.size}`);
    // The last chunk that starts at or before `index`.
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.starts[middle] as number) <= index) low = middle;
      else high = middle - 1;
    }
    return [this.chunks[low] as Buffer, (index - (this.starts[low] as number)) * this.recordBytes];
  }
}

const HEX32 = /^0x[0-9a-f]{64}$/;

/**
 * Writes a 32-byte value (a nonce, a transaction hash) as its bytes. False, writing nothing, unless it is
 * `0x` and 64 lowercase hex digits, the only spelling {@link readHex32} gives back: anything else must be
 * kept as it was written.
 */
export function writeHex32(buffer: Buffer, offset: number, value: string): boolean {
  return HEX32.test(value) && writeHex(buffer, offset, value, 32);
}

export function readHex32(buffer: Buffer, offset: number): Hex {
  return `0x${buffer.toString("hex", offset, offset + 32)}`;
}

/** Values stored once however often they recur, each named by a small number. */
export class Interned<T> {
  private readonly ids = new Map<string, number>();
  private readonly values: T[] = [];

  /** The number of the value `key` stands for, made by `make` the first time. */
  id(key: string, make: () => T): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(make());
      this.ids.set(key, id);
    }
    return id;
  }

  get(id: number): T {
    const value = this.values[id];
    if (value === undefined) throw new RangeError(`nothing interned as ${id}`);
    return value;
  }

  all(): readonly T[] {
    return this.values;
  }
}
