/**
 * The embedded rate-limit store: one number per key in a Map used as an LRU (a write moves the key
 * to the end). Memory is bounded: past `maxEntries` keys the least recently charged are dropped, so
 * a flood from random source addresses costs at most `maxEntries` small entries (a dropped key
 * starts again with a full burst, which only ever errs towards letting a request through).
 */
import { gcra, type RateLimitRule, type RateLimitStore, type TakeResult } from './store.ts';

export interface MemoryStoreOptions {
  /** Most keys kept. */
  maxEntries: number;
  /** The clock, in milliseconds (monotonic by default); tests may pass their own. */
  now?: () => number;
}

export class MemoryRateLimitStore implements RateLimitStore {
  readonly #tats = new Map<string, number>();
  #maxEntries: number;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;
  /** Keys dropped to stay within maxEntries (for the status page). */
  evicted = 0;

  constructor(options: MemoryStoreOptions) {
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? (() => performance.now());
    // Keys whose bucket is full again hold no information: drop them now and then.
    this.#sweeper = setInterval(() => this.sweep(), 30_000);
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#tats.size;
  }

  /** A reload may change the bound; extra keys go at the next write. */
  set maxEntries(value: number) {
    this.#maxEntries = value;
  }

  take(key: string, rule: RateLimitRule, cost: number): TakeResult {
    const tats = this.#tats;
    const { result, tat } = gcra(tats.get(key), this.#now(), rule, cost);
    if (result.allowed) {
      tats.delete(key);
      tats.set(key, tat);
      if (tats.size > this.#maxEntries) this.#evict();
    }
    return result;
  }

  reset(key: string): void {
    this.#tats.delete(key);
  }

  /** Drops the keys that have nothing left to remember. */
  sweep(): void {
    const now = this.#now();
    for (const [key, tat] of this.#tats) if (tat <= now) this.#tats.delete(key);
  }

  #evict(): void {
    let excess = this.#tats.size - this.#maxEntries;
    for (const key of this.#tats.keys()) {
      if (excess-- <= 0) break;
      this.#tats.delete(key);
      this.evicted++;
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#tats.clear();
  }
}
