/**
 * Whether a route's cache would answer a request now, and why: the look-up the cache middleware
 * makes, for the admin API's explain, answering in words and serving nothing. The store's get
 * marks the entry used (as any look-up does); nothing else changes.
 */
import type { Exchange } from '../core/exchange.ts';
import { parseCacheControl } from './cache-control.ts';
import type { CachedEntry } from './entry.ts';
import type { CacheRoute } from './middleware.ts';
import { decideUse, NO_REQUEST_DIRECTIVES, requestDirectives, variantKey } from './policy.ts';

/** The explain answer's `cache` part. */
export interface CacheVerdict {
  readonly would_answer: boolean;
  readonly reason: string;
}

/** Whether `route`'s cache would answer the request `ex` describes now, and why. */
export async function explainCache(route: CacheRoute, ex: Exchange, now = Date.now()): Promise<CacheVerdict> {
  const method = ex.info.method;
  if (method !== 'GET' && method !== 'HEAD') return { would_answer: false, reason: `${method} is not answered from the cache (a success invalidates the URL)` };
  if (route.bypass !== null && route.bypass(ex)) return { would_answer: false, reason: "the route's cache bypass rule matches: the request goes upstream" };
  const key = route.key(ex);
  const entries = await route.shared.store.get(key);
  if (entries === undefined) return { would_answer: false, reason: `nothing stored under ${key}: a miss, filled from the upstream` };
  const headers = ex.req.headers;
  const entry = entries.find((e: CachedEntry) => e.vary.length === 0 || variantKey(e.vary, headers) === e.variant);
  if (entry === undefined) return { would_answer: false, reason: `stored under ${key}, but not this variant (Vary: ${entries[0]?.vary.join(', ')}): a miss` };
  const cc = headers['cache-control'];
  const directives = cc !== undefined && route.requestDirectives ? requestDirectives(parseCacheControl(cc)) : NO_REQUEST_DIRECTIVES;
  const use = decideUse(entry, directives, now);
  const ttl = Math.floor(use.ttl);
  switch (use.kind) {
    case 'fresh':
      return { would_answer: true, reason: `a fresh stored response (ttl ${ttl} s)` };
    case 'stale-ok':
      return { would_answer: true, reason: `a stale stored response the request's max-stale accepts (${-ttl} s stale)` };
    case 'stale-while-revalidate':
      return { would_answer: true, reason: `a stale stored response, served while it is revalidated in the background (${-ttl} s stale)` };
    case 'revalidate':
      return { would_answer: false, reason: use.requested ? "the request's Cache-Control asks for revalidation" : `stored but stale (${-ttl} s): revalidated with the upstream first` };
    default:
      return use satisfies never;
  }
}
