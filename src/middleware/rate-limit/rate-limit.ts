/**
 * A route's rate limits as a middleware (nginx's limit_req): each limit charges one request to its
 * key in the store; a refusal is answered 429 with Retry-After and the IETF RateLimit and
 * RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers-10), and counts towards a ban. A
 * request within the burst but past `delay_after` is held back until it fits the rate.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { GatehouseError } from '../../core/errors.ts';
import type { Exchange } from '../../core/exchange.ts';
import type { ProtectionState } from '../../core/protection-state.ts';
import { sendError } from '../../listeners/respond.ts';
import { clientKey } from '../ip-filter/ip-address.ts';
import type { Finish, Middleware, Next } from '../pipeline.ts';
import type { BanPolicy } from './bans.ts';
import type { RateLimitRule, TakeResult } from './store.ts';

/** One part of a limit's key. */
export type KeyPart = { readonly kind: 'ip' } | { readonly kind: 'route' } | { readonly kind: 'header'; readonly name: string };

/** One compiled limit. */
export interface CompiledLimit {
  /** The name shown in RateLimit headers. */
  readonly name: string;
  /** Route and limit name: the stable prefix of its keys in the store, kept across reloads. */
  readonly id: string;
  readonly rule: RateLimitRule;
  readonly key: readonly KeyPart[];
  /** Requests ahead of the rate by more than this (ms) wait for the difference; -1: never wait. */
  readonly delayAfterMs: number;
  readonly responseHeaders: boolean;
  /** The RateLimit-Policy value, built once. */
  readonly policyHeader: string;
}

/** What a limit needs from the snapshot. */
export interface RateLimitContext {
  readonly state: ProtectionState;
  readonly bans: BanPolicy | null;
  readonly v6Prefix: number;
}

/** Header values longer than this are keyed by their hash, so that a key stays small. */
const MAX_KEY_VALUE = 128;

export class RateLimit implements Middleware {
  readonly name = 'rate_limit';
  readonly #limits: readonly CompiledLimit[];
  readonly #context: RateLimitContext;

  constructor(limits: readonly CompiledLimit[], context: RateLimitContext) {
    this.#limits = limits;
    this.#context = context;
  }

  handle(ex: Exchange, next: Next, finish: Finish): void | Promise<void> {
    const store = this.#context.state.store;
    let delay = 0;
    for (let i = 0; i < this.#limits.length; i++) {
      const limit = this.#limits[i] as CompiledLimit;
      const key = this.#keyOf(limit, ex);
      if (key === null) continue;
      const result: TakeResult | Promise<TakeResult> = store.take(key, limit.rule, 1);
      if (result instanceof Promise) return this.#continue(ex, next, finish, i, result, delay);
      if (!result.allowed) return this.#refuse(ex, limit, result, finish);
      delay = Math.max(delay, this.#accept(ex, limit, result));
    }
    this.#proceed(ex, next, delay);
  }

  /** The rest of `handle` once a store answers asynchronously (a shared store). */
  async #continue(ex: Exchange, next: Next, finish: Finish, index: number, pending: Promise<TakeResult>, delaySoFar: number): Promise<void> {
    let delay = delaySoFar;
    let result = await pending;
    for (let i = index; i < this.#limits.length; i++) {
      const limit = this.#limits[i] as CompiledLimit;
      if (i > index) {
        const key = this.#keyOf(limit, ex);
        if (key === null) continue;
        result = await this.#context.state.store.take(key, limit.rule, 1);
      }
      if (!result.allowed) return this.#refuse(ex, limit, result, finish);
      delay = Math.max(delay, this.#accept(ex, limit, result));
    }
    this.#proceed(ex, next, delay);
  }

  /** The state key, or null when a header the key names is missing (the limit does not apply). */
  #keyOf(limit: CompiledLimit, ex: Exchange): string | null {
    let key = limit.id;
    for (const part of limit.key) {
      if (part.kind === 'ip') key += `|${clientKey(ex.client, this.#context.v6Prefix)}`;
      else if (part.kind === 'header') {
        const raw = ex.req.headers[part.name];
        const value = Array.isArray(raw) ? raw.join(', ') : raw;
        if (value === undefined || value === '') return null;
        key += `|${value.length > MAX_KEY_VALUE ? createHash('sha256').update(value).digest('base64url') : value}`;
      }
    }
    return key;
  }

  /** Adds the RateLimit fields when asked; returns how long this request must wait. */
  #accept(ex: Exchange, limit: CompiledLimit, result: TakeResult): number {
    if (limit.responseHeaders) setRateLimitHeaders(ex.res, limit, result);
    if (limit.delayAfterMs < 0 || result.aheadMs <= limit.delayAfterMs) return 0;
    return result.aheadMs - limit.delayAfterMs;
  }

  #proceed(ex: Exchange, next: Next, delay: number): void {
    if (delay <= 0) {
      next();
      return;
    }
    this.#context.state.counters.rate_delayed++;
    // The wait is bounded by the burst (a request further ahead was refused). A client that leaves
    // meanwhile is noticed by the action, which logs it as 499.
    setTimeout(next, delay);
  }

  #refuse(ex: Exchange, limit: CompiledLimit, result: TakeResult, finish: Finish): void {
    const { state, bans } = this.#context;
    state.counters.rate_limited++;
    const retryAfter = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    const headers: Record<string, string> = {
      'retry-after': String(retryAfter),
      'ratelimit-policy': limit.policyHeader,
      ratelimit: `"${limit.name}";r=0;t=${retryAfter}`,
    };
    if (bans !== null && state.bans.violation(clientKey(ex.client, this.#context.v6Prefix), bans, 'rate_limit') > 0) {
      // Banned from now on: this connection gets no further request.
      headers['connection'] = 'close';
      ex.res.shouldKeepAlive = false;
    }
    sendError(ex, new GatehouseError('TOO_MANY_REQUESTS'), headers);
    finish(ex);
  }
}

/** RateLimit-Policy: "name";q=<quota>;w=<seconds to refill it>. */
export function policyHeader(name: string, rule: RateLimitRule): string {
  const quota = rule.burst + 1;
  return `"${name}";q=${quota};w=${Math.max(1, Math.ceil((quota * rule.interval) / 1000))}`;
}

function setRateLimitHeaders(res: ServerResponse, limit: CompiledLimit, result: TakeResult): void {
  const value = `"${limit.name}";r=${result.remaining};t=${Math.ceil(result.resetMs / 1000)}`;
  appendHeader(res, 'ratelimit', value);
  appendHeader(res, 'ratelimit-policy', limit.policyHeader);
}

/** Several limits list their items in one field (a Structured Fields List). */
function appendHeader(res: ServerResponse, name: string, value: string): void {
  const existing = res.getHeader(name);
  res.setHeader(name, existing === undefined ? value : `${String(existing)}, ${value}`);
}
