/**
 * Request collapsing: concurrent misses (or revalidations) of the same variant cause one upstream
 * request. The first request leads; the others wait for its outcome, then use the stored entry,
 * or go upstream themselves when the response could not be stored (nginx's proxy_cache_lock;
 * Varnish's waiting list). A follower waits at most the lock timeout.
 */
import type { CachedEntry } from './entry.ts';

/** What the followers of a fill learn. */
export type FillOutcome =
  | { readonly kind: 'stored'; readonly entry: CachedEntry }
  /** Not stored (uncacheable, failed, or too large): go upstream alone. */
  | { readonly kind: 'pass' }
  /** The leader took longer than the lock timeout. */
  | { readonly kind: 'timeout' };

const PASS: FillOutcome = { kind: 'pass' };
const TIMEOUT: FillOutcome = { kind: 'timeout' };

export class Fill {
  readonly key: string;
  readonly #fills: Fills;
  #settled = false;
  #waiters: ((outcome: FillOutcome) => void)[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(key: string, fills: Fills) {
    this.key = key;
    this.#fills = fills;
  }

  /** Resolves with the leader's outcome, or 'timeout' after `timeoutMs` from the first follower. */
  wait(timeoutMs: number): Promise<FillOutcome> {
    this.#timer ??= setTimeout(() => this.#release(TIMEOUT), timeoutMs).unref();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** The leader's outcome; later calls do nothing. */
  settle(entry: CachedEntry | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#fills.remove(this);
    this.#release(entry === null ? PASS : { kind: 'stored', entry });
  }

  #release(outcome: FillOutcome): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (outcome === TIMEOUT) {
      // New requests lead a fill of their own rather than wait on this one.
      this.#fills.remove(this);
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(outcome);
  }
}

export class Fills {
  readonly #inFlight = new Map<string, Fill>();

  /** The fill in progress for `key`, or a new one the caller leads (`leader` true). */
  join(key: string): { fill: Fill; leader: boolean } {
    const existing = this.#inFlight.get(key);
    if (existing !== undefined) return { fill: existing, leader: false };
    const fill = new Fill(key, this);
    this.#inFlight.set(key, fill);
    return { fill, leader: true };
  }

  remove(fill: Fill): void {
    if (this.#inFlight.get(fill.key) === fill) this.#inFlight.delete(fill.key);
  }

  get size(): number {
    return this.#inFlight.size;
  }
}

/**
 * Keys recently found uncacheable ("hit-for-miss"): their misses are not collapsed, or every
 * request for an uncacheable resource would wait for the one before it. Bounded.
 */
export class PassMarks {
  readonly #until = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  mark(key: string, now: number): void {
    this.#until.delete(key);
    this.#until.set(key, now + this.#ttlMs);
    if (this.#until.size > this.#max) {
      const oldest = this.#until.keys().next();
      if (oldest.done !== true) this.#until.delete(oldest.value);
    }
  }

  clear(key: string): void {
    this.#until.delete(key);
  }

  has(key: string, now: number): boolean {
    if (this.#until.size === 0) return false;
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(key);
    return false;
  }
}
