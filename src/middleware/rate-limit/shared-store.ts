/**
 * The rate-limit store of a proxy with several worker threads: one GCRA number per key (see
 * store.ts) in shared memory (core/shared-table.ts), so that a limit of N a second admits N in
 * total whichever worker each request lands on. A `take` is one locked read-modify-write of one
 * slot; no message, no wait on another thread beyond that lock.
 *
 * Times are epoch milliseconds (timeOrigin + now), the one clock all threads share.
 */
import { SharedTable, type SharedTableMemory, type SlotRef } from '../../core/shared-table.ts';
import { gcra, type RateLimitRule, type RateLimitStore, type TakeResult } from './store.ts';

export class SharedRateLimitStore implements RateLimitStore {
  readonly #table: SharedTable;
  readonly #ref: SlotRef = { bucket: 0, high: 0, low: 0 };
  readonly #now: () => number;

  constructor(memory: SharedTableMemory, now: () => number = () => performance.timeOrigin + performance.now()) {
    this.#table = new SharedTable(memory);
    this.#now = now;
  }

  /** Keys whose bucket is not full again (a racy count, for the status page). */
  get size(): number {
    return this.#table.count(this.#now());
  }

  /** Keys dropped for room: not counted in shared memory (the table's size is fixed at start). */
  readonly evicted = 0;

  /** The table's size is fixed when the workers start; a reload cannot change it. */
  set maxEntries(_value: number) {}

  take(key: string, rule: RateLimitRule, cost: number): TakeResult {
    const table = this.#table;
    const ref = this.#ref;
    table.locate(key, ref);
    const now = this.#now();
    table.lock(ref.bucket);
    try {
      const slot = table.find(ref);
      const stored = slot === -1 ? undefined : (table.values[slot] as number);
      const { result, tat } = gcra(stored, now, rule, cost);
      // A TAT at or before now holds no information: the slot is free for another key.
      if (result.allowed) table.values[slot === -1 ? table.claim(ref, tat, now) : slot] = tat;
      return result;
    } finally {
      table.unlock(ref.bucket);
    }
  }

  reset(key: string): void {
    const table = this.#table;
    const ref = this.#ref;
    table.locate(key, ref);
    table.lock(ref.bucket);
    const slot = table.find(ref);
    if (slot !== -1) table.free(slot);
    table.unlock(ref.bucket);
  }

  /** Sweeping is not needed: a stale slot is reused by the next key that wants it. */
  sweep(): void {}

  close(): void {}
}

/**
 * Open connections per client across worker threads (`max_connections_per_client`): a count per
 * key in shared memory. A full bucket drops the key with the fewest connections, which can only
 * undercount (let a connection through), never refuse one wrongly.
 */
export class SharedConnectionCounts {
  readonly #table: SharedTable;
  readonly #ref: SlotRef = { bucket: 0, high: 0, low: 0 };

  constructor(memory: SharedTableMemory) {
    this.#table = new SharedTable(memory);
  }

  get size(): number {
    return this.#table.count(1);
  }

  /** One more open connection for `key`; false (and nothing counted) when it already has `max`. */
  open(key: string, max: number): boolean {
    const table = this.#table;
    const ref = this.#ref;
    table.locate(key, ref);
    table.lock(ref.bucket);
    try {
      const slot = table.claim(ref, 0, 1);
      const open = table.values[slot] as number;
      if (open >= max) return false;
      table.values[slot] = open + 1;
      return true;
    } finally {
      table.unlock(ref.bucket);
    }
  }

  /**
   * Forgets every count. A worker that dies takes its connections with it but cannot subtract
   * them: clearing lets the clients it held connect again (the live workers' connections are
   * then undercounted until they close, which errs towards letting a connection through).
   */
  clear(): void {
    this.#table.clear();
  }

  close(key: string): void {
    const table = this.#table;
    const ref = this.#ref;
    table.locate(key, ref);
    table.lock(ref.bucket);
    const slot = table.find(ref);
    if (slot !== -1) {
      const open = (table.values[slot] as number) - 1;
      if (open <= 0) table.free(slot);
      else table.values[slot] = open;
    }
    table.unlock(ref.bucket);
  }
}
