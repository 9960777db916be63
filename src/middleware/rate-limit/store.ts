/**
 * Where rate-limit state lives. The in-memory store is the embedded default; a shared store (Redis)
 * lets many instances enforce one limit. Every store passes test/contract/rate-limit-store.test.ts.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, the virtual-scheduling form of a leaky
 * bucket): each key holds one number, its theoretical arrival time (TAT). A request costing `c` is
 * allowed when `max(TAT, now) + c·T − now ≤ (burst + 1)·T`, where T is the interval between two
 * requests at the sustained rate; it then moves TAT to `max(TAT, now) + c·T`.
 */

/** One limit's shape; `take` may be called with different rules for different keys. */
export interface RateLimitRule {
  /** Milliseconds between two requests at the sustained rate (1000 / requests per second). */
  readonly interval: number;
  /** Requests allowed at once on top of the sustained rate. */
  readonly burst: number;
}

/** The outcome of one `take`. */
export interface TakeResult {
  readonly allowed: boolean;
  /** Requests that could still be made right now (0 when refused). */
  readonly remaining: number;
  /** Milliseconds until this key is back to a full burst (nothing left to remember). */
  readonly resetMs: number;
  /** Refused: milliseconds until the same request would be allowed. Allowed: 0. */
  readonly retryAfterMs: number;
  /**
   * Allowed: how far ahead of the sustained rate the key is after this request, in milliseconds
   * (0 for a request at or under the rate). A limit that delays instead of bursting waits for this.
   */
  readonly aheadMs: number;
}

export interface RateLimitStore {
  /** Charges `cost` requests to `key` under `rule`. Synchronous stores return the result directly. */
  take(key: string, rule: RateLimitRule, cost: number): TakeResult | Promise<TakeResult>;
  /** Forgets `key` (its next request starts with a full burst). */
  reset(key: string): void | Promise<void>;
  /** Releases timers and connections. */
  close(): void | Promise<void>;
}

/** The GCRA decision for a key whose TAT is `tat` (or undefined for a new key), at `now`. */
export function gcra(tat: number | undefined, now: number, rule: RateLimitRule, cost: number): { result: TakeResult; tat: number } {
  const t = rule.interval;
  const base = tat === undefined || tat < now ? now : tat;
  const next = base + cost * t;
  const limit = (rule.burst + 1) * t;
  const allowAt = next - limit;
  // A nanosecond of slack: `now + x − x` is not always `now` in floating point.
  if (allowAt - now > 1e-6) {
    return {
      tat: base,
      result: { allowed: false, remaining: 0, resetMs: base - now, retryAfterMs: allowAt - now, aheadMs: 0 },
    };
  }
  return {
    tat: next,
    result: {
      allowed: true,
      remaining: Math.floor((now - allowAt) / t + 1e-9),
      resetMs: next - now,
      retryAfterMs: 0,
      aheadMs: next - now - t > 1e-6 ? next - now - t : 0,
    },
  };
}
