/**
 * Retry policy: which failed tries are tried again on another server, and the retry budget that
 * keeps retries from multiplying an outage. Nothing here runs on the success path but the
 * budget's request count.
 */
import type { Readable } from 'node:stream';
import type { UpstreamConfig } from '../config/schema.ts';
import type { RetryCondition } from '../core/errors.ts';

/** The compiled `retries` of an upstream. */
export interface RetryPolicy {
  /** Tries in all (1: no retries). */
  readonly attempts: number;
  readonly conditions: ReadonlySet<RetryCondition>;
  /** Statuses retried (idempotent methods only), 500-599. */
  readonly statuses: ReadonlySet<number>;
  readonly idempotentMethods: ReadonlySet<string>;
  /** Time from the request's arrival after which no try starts and the current one is cut, ms (0: none). */
  readonly deadlineMs: number;
  /** Retries allowed per request over the budget window. */
  readonly budgetRatio: number;
  readonly budgetMinPerSecond: number;
}

export function compileRetry(config: UpstreamConfig['retries']): RetryPolicy {
  const conditions = new Set<RetryCondition>();
  const statuses = new Set<number>();
  for (const condition of config.retry_on) {
    if (typeof condition === 'number') statuses.add(condition);
    else conditions.add(condition);
  }
  return {
    attempts: config.attempts,
    conditions,
    statuses,
    idempotentMethods: new Set(config.idempotent_methods),
    deadlineMs: config.deadline,
    budgetRatio: config.budget.percent / 100,
    budgetMinPerSecond: config.budget.min_per_second,
  };
}

/**
 * A request body can be sent again only if nobody has read from it yet: undici reads the stream
 * once it writes the request (client-h1.js writeStream) and destroys it when that try fails, so a
 * body is replayable only after a failure before the request was written (a connect failure).
 * Null (no body) is always replayable.
 */
export function replayable(body: Readable | null): boolean {
  return body === null || (!body.readableDidRead && !body.destroyed);
}

/** Seconds of history the budget looks at. */
const WINDOW_S = 10;

/**
 * The retry budget (as Finagle's): over the last 10 seconds, retries may number at most
 * `ratio` × requests + `minPerSecond` × 10. Request and retry counts are sampled once a second
 * into a small ring, on the request path itself (one comparison per request, no timer).
 */
export class RetryBudget {
  /** Requests and retries since the start. */
  requests = 0;
  retries = 0;
  readonly #at = new Float64Array(WINDOW_S + 1);
  readonly #requestsAt = new Float64Array(WINDOW_S + 1);
  readonly #retriesAt = new Float64Array(WINDOW_S + 1);
  /** Index of the newest sample. */
  #newest = 0;
  #nextSample: number;

  constructor(now = performance.now()) {
    this.#at.fill(now);
    this.#nextSample = now + 1000;
  }

  /** Counts a request (its first try). */
  deposit(now: number): void {
    if (now >= this.#nextSample) this.#sample(now);
    this.requests++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  withdraw(now: number, ratio: number, minPerSecond: number): boolean {
    if (now >= this.#nextSample) this.#sample(now);
    const { requests, retries } = this.windowCounts(now);
    if (retries + 1 > ratio * requests + minPerSecond * WINDOW_S) return false;
    this.retries++;
    return true;
  }

  /** Retries counted in the current window, for the admin API. */
  windowCounts(now: number): { requests: number; retries: number } {
    const oldest = this.#oldestWithin(now);
    return { requests: this.requests - (this.#requestsAt[oldest] as number), retries: this.retries - (this.#retriesAt[oldest] as number) };
  }

  #sample(now: number): void {
    const size = this.#at.length;
    this.#newest = (this.#newest + 1) % size;
    this.#at[this.#newest] = now;
    this.#requestsAt[this.#newest] = this.requests;
    this.#retriesAt[this.#newest] = this.retries;
    this.#nextSample = now + 1000;
  }

  /** The oldest sample no more than the window old (the newest one when all are older). */
  #oldestWithin(now: number): number {
    const size = this.#at.length;
    const limit = now - WINDOW_S * 1000;
    for (let k = 1; k <= size; k++) {
      const i = (this.#newest + k) % size;
      if ((this.#at[i] as number) >= limit) return i;
    }
    return this.#newest;
  }
}
