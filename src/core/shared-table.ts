/**
 * A fixed-size table in shared memory (a SharedArrayBuffer), one number per key, that every worker
 * thread reads and writes: the shared form of the per-client state the limits keep. It is
 * set-associative, as CPU caches are: a key hashes to one bucket of WAYS slots, and a bucket has
 * a lock, so that one read-modify-write of a key is atomic across threads. A full bucket gives
 * up the slot whose value says it matters least (the caller's `victim` order), which for limits
 * only ever errs towards letting a request through.
 *
 * Keys are kept as 64-bit hashes: two keys that share one are one key (odds ~n²/2⁶⁵).
 */

import { randomBytes } from 'node:crypto';

/** Slots per bucket. */
export const WAYS = 8;
/** Spins before a waiting thread sleeps on the lock. */
const SPINS = 64;
/**
 * Sleeps (of a millisecond) after which a held lock is taken over. A holder keeps it for a few
 * instructions and never yields, so a lock held that long belongs to a thread that ended inside
 * them (a worker terminated by hand, or out of memory): waiting on would hang every thread that
 * needs the bucket. Two holders at once, should one merely have stalled, only miscount a limit.
 */
const STALE_WAITS = 200;

/** The memory of a table, made once by the primary and handed to each worker. */
export interface SharedTableMemory {
  readonly buckets: number;
  /** Random, per table: a client cannot pick keys that all land in one bucket and push others out. */
  readonly seed: number;
  /** buckets × Int32: 0 free, 1 held. */
  readonly locks: SharedArrayBuffer;
  /** buckets × WAYS × 2 × Uint32: the key's hash; 0,0 is an empty slot. */
  readonly hashes: SharedArrayBuffer;
  /** buckets × WAYS × Float64: the value. */
  readonly values: SharedArrayBuffer;
}

/** Memory for at least `entries` keys (rounded up to a power of two buckets). */
export function allocateSharedTable(entries: number): SharedTableMemory {
  let buckets = 1;
  while (buckets * WAYS < entries * 1.25) buckets *= 2;
  return {
    buckets,
    seed: randomBytes(4).readUInt32LE(0),
    locks: new SharedArrayBuffer(buckets * 4),
    hashes: new SharedArrayBuffer(buckets * WAYS * 8),
    values: new SharedArrayBuffer(buckets * WAYS * 8),
  };
}

/** Where a key lives: its bucket's first slot, and its hash. */
export interface SlotRef {
  bucket: number;
  high: number;
  low: number;
}

export class SharedTable {
  readonly capacity: number;
  readonly #mask: number;
  readonly #seed: number;
  readonly #locks: Int32Array;
  readonly #hashes: Uint32Array;
  /** Each slot's value; callers read and write it between lock() and unlock(). */
  readonly values: Float64Array;

  constructor(memory: SharedTableMemory) {
    this.capacity = memory.buckets * WAYS;
    this.#mask = memory.buckets - 1;
    this.#seed = memory.seed;
    this.#locks = new Int32Array(memory.locks);
    this.#hashes = new Uint32Array(memory.hashes);
    this.values = new Float64Array(memory.values);
  }

  /** Fills `ref` with `key`'s bucket and hash (no allocation per call). */
  locate(key: string, ref: SlotRef): void {
    // Two FNV-1a hashes with different offsets: 64 bits from the UTF-16 code units.
    let a = 0x811c9dc5 ^ this.#seed;
    let b = 0x01000193 ^ key.length ^ Math.imul(this.#seed, 0x9e3779b1);
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    ref.high = (a | 1) >>> 0; // never 0: 0,0 marks an empty slot
    ref.low = b >>> 0;
    ref.bucket = ((a ^ (b >>> 7)) >>> 0) & this.#mask;
  }

  /** Takes the bucket's lock (spinning, then sleeping a millisecond at a time; a stale one is taken over). */
  lock(bucket: number): void {
    const locks = this.#locks;
    for (let spins = 0; Atomics.compareExchange(locks, bucket, 0, 1) !== 0; spins++) {
      if (spins >= SPINS + STALE_WAITS) return;
      if (spins >= SPINS) Atomics.wait(locks, bucket, 1, 1);
    }
  }

  unlock(bucket: number): void {
    Atomics.store(this.#locks, bucket, 0);
    Atomics.notify(this.#locks, bucket, 1);
  }

  /** The slot holding `ref`'s key, or -1. Call with the bucket locked. */
  find(ref: SlotRef): number {
    const hashes = this.#hashes;
    const first = ref.bucket * WAYS;
    for (let slot = first; slot < first + WAYS; slot++) {
      if (hashes[slot * 2] === ref.high && hashes[slot * 2 + 1] === ref.low) return slot;
    }
    return -1;
  }

  /**
   * A slot for `ref`'s key: its own, else an empty one or one whose value is below `staleBelow`
   * (it no longer matters), else the one with the lowest value. A new slot's value is `initial`.
   * Call with the bucket locked.
   */
  claim(ref: SlotRef, initial: number, staleBelow: number): number {
    const found = this.find(ref);
    if (found !== -1) return found;
    const hashes = this.#hashes;
    const values = this.values;
    const first = ref.bucket * WAYS;
    let victim = first;
    for (let slot = first; slot < first + WAYS; slot++) {
      if (hashes[slot * 2] === 0 || (values[slot] as number) < staleBelow) {
        victim = slot;
        break;
      }
      if ((values[slot] as number) < (values[victim] as number)) victim = slot;
    }
    hashes[victim * 2] = ref.high;
    hashes[victim * 2 + 1] = ref.low;
    values[victim] = initial;
    return victim;
  }

  /** Empties `slot`. Call with its bucket locked. */
  free(slot: number): void {
    this.#hashes[slot * 2] = 0;
    this.#hashes[slot * 2 + 1] = 0;
    this.values[slot] = 0;
  }

  /** Empties every slot, one bucket at a time under its lock (what a dead worker counted is forgotten). */
  clear(): void {
    for (let bucket = 0; bucket <= this.#mask; bucket++) {
      this.lock(bucket);
      for (let slot = bucket * WAYS; slot < (bucket + 1) * WAYS; slot++) this.free(slot);
      this.unlock(bucket);
    }
  }

  /** Slots in use whose value is at least `staleBelow` (a racy count, for the status page). */
  count(staleBelow: number): number {
    let n = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.#hashes[slot * 2] !== 0 && (this.values[slot] as number) >= staleBelow) n++;
    }
    return n;
  }
}
