/**
 * The cache middleware (RFC 9111 shared cache). Per request:
 * - GET/HEAD: look the key up; a fresh stored response is answered from the store without going
 *   further (the hot path: one map look-up, precomputed headers, the stored buffers written as
 *   they are); a stale one is served while revalidating in the background when
 *   stale-while-revalidate allows, or revalidated first (If-None-Match / If-Modified-Since);
 *   nothing usable goes upstream, collapsed with concurrent misses of the same variant, and a
 *   CacheFilter stores the response while it streams to the client.
 * - Unsafe methods: a success invalidates the target URI and the same-origin Location and
 *   Content-Location (§4.4).
 */
import type { Exchange } from '../core/exchange.ts';
import { sendSimple } from '../listeners/respond.ts';
import type { HeaderOps } from '../middleware/headers.ts';
import type { Finish, Middleware, Next, ResponseFilter, ResponseHeaders, UpstreamRequestEdits } from '../middleware/pipeline.ts';
import { parseCacheControl } from './cache-control.ts';
import type { Fill, FillOutcome } from './collapse.ts';
import { flatGet, type CachedEntry } from './entry.ts';
import { CacheFilter, type FetchContext } from './filter.ts';
import { keyOfUrl, type KeyFunction, type KeyOptions } from './key.ts';
import {
  decideUse,
  invalidates,
  isUnsafe,
  NO_REQUEST_DIRECTIVES,
  normalizeVaryValue,
  relatedTargets,
  requestDirectives,
  variantKey,
  type HeaderMap,
  type PolicyOptions,
  type RequestDirectives,
} from './policy.ts';
import { serveEntry } from './serve.ts';
import type { SharedCache } from './shared.ts';

/** A route's compiled cache settings. */
export interface CacheRoute {
  readonly shared: SharedCache;
  readonly key: KeyFunction;
  readonly keyOptions: KeyOptions;
  /** Request headers that always select a variant (`key.headers`), lower case. */
  readonly keyHeaders: readonly string[];
  /** True when the request skips the cache; null when the route has no bypass rule. */
  readonly bypass: ((ex: Exchange) => boolean) | null;
  readonly policy: PolicyOptions;
  /** Honour the request's Cache-Control (no-cache, max-age, min-fresh, max-stale, only-if-cached). */
  readonly requestDirectives: boolean;
  readonly collapse: boolean;
  /** Longest wait for another request's fill, ms. */
  readonly lockTimeout: number;
  /** The cache's name in Cache-Status. */
  readonly statusName: string;
}

/** Request headers removed upstream on a miss: the cache wants the whole, unconditional response. */
const CONDITIONAL_AND_RANGE: ReadonlySet<string> = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);

/**
 * A background refresh that has not finished after this long is taken as lost (its request was
 * refused before reaching a server, say), so that another may start.
 */
const REFRESH_EXPIRY_MS = 60_000;

/** A miss: GET (also for HEAD, so that the answer fills the cache), without conditionals or Range. */
const MISS_EDITS: UpstreamRequestEdits = { method: 'GET', headers: { remove: CONDITIONAL_AND_RANGE, set: [], add: [] } };

export class CacheMiddleware implements Middleware {
  readonly name = 'cache';
  readonly route: CacheRoute;
  readonly #hit: string;
  readonly #bypassFilter: ResponseFilter;
  readonly #invalidateFilter: ResponseFilter;
  readonly #normalize = memoizedVaryNormalizer();

  constructor(route: CacheRoute) {
    this.route = route;
    this.#hit = `${route.statusName}; hit`;
    const bypassStatus = `${route.statusName}; fwd=bypass`;
    this.#bypassFilter = {
      onResponseHead(_ex, _status, headers) {
        headers['cache-status'] = bypassStatus;
        return null;
      },
    };
    this.#invalidateFilter = { onResponseHead: (ex, status, headers) => this.#invalidate(ex, status, headers) };
  }

  handle(ex: Exchange, next: Next, finish: Finish): void | Promise<void> {
    const method = ex.info.method;
    if (method !== 'GET' && method !== 'HEAD') {
      if (isUnsafe(method)) ex.addResponseFilter(this.#invalidateFilter);
      next();
      return;
    }
    const route = this.route;
    if (route.bypass !== null && route.bypass(ex)) {
      route.shared.counters.bypassed++;
      ex.addResponseFilter(this.#bypassFilter);
      next();
      return;
    }
    const key = route.key(ex);
    const found = route.shared.store.get(key);
    if (found instanceof Promise) return found.then((entries) => this.#lookup(ex, next, finish, key, entries));
    return this.#lookup(ex, next, finish, key, found);
  }

  #lookup(ex: Exchange, next: Next, finish: Finish, key: string, entries: readonly CachedEntry[] | undefined): void | Promise<void> {
    const route = this.route;
    const headers = ex.req.headers;
    const now = Date.now();
    const entry = entries === undefined ? undefined : this.#select(entries, headers);
    const cc = headers['cache-control'];
    const honour = cc !== undefined && route.requestDirectives;
    if (entry !== undefined && now < entry.freshUntil && !honour) {
      // The hot path: fresh, and the client asks nothing special.
      route.shared.counters.hits++;
      const upstream = entry.meta.upstreamStatus;
      return this.#answer(ex, next, finish, key, entry, upstream === '' ? this.#hit : `${this.#hit}, ${upstream}`, now);
    }
    const directives = honour ? requestDirectives(parseCacheControl(cc)) : NO_REQUEST_DIRECTIVES;
    if (entry === undefined) {
      if (directives.onlyIfCached) return this.#notCached(ex, finish);
      return this.#fetch(ex, next, finish, entries, { key, stale: undefined, directives, fwd: entries === undefined ? 'uri-miss' : 'vary-miss' });
    }
    const use = decideUse(entry, directives, now);
    const ttl = Math.floor(use.ttl);
    switch (use.kind) {
      case 'fresh':
        route.shared.counters.hits++;
        return this.#answer(ex, next, finish, key, entry, `${route.statusName}; hit; ttl=${ttl}`, now);
      case 'stale-ok':
        route.shared.counters.staleHits++;
        return this.#answer(ex, next, finish, key, entry, `${route.statusName}; hit; ttl=${ttl}; detail=max-stale`, now);
      case 'stale-while-revalidate': {
        route.shared.counters.staleHits++;
        const status = `${route.statusName}; hit; ttl=${ttl}; detail=stale-while-revalidate`;
        const served = serveEntry(ex, entry, status, now, finish);
        const refresh = (): void => this.#revalidateInBackground(ex, next, finish, key, entries, entry, directives);
        if (served === true) return refresh();
        if (served === false) return this.#gone(ex, next, finish, key, entries, directives);
        return served.then((ok) => (ok ? refresh() : this.#gone(ex, next, finish, key, entries, directives)));
      }
      case 'revalidate':
        if (directives.onlyIfCached) return this.#notCached(ex, finish);
        return this.#fetch(ex, next, finish, entries, { key, stale: entry, directives, fwd: use.requested ? 'request' : 'stale' });
      default:
        return use satisfies never;
    }
  }

  /** Serves `entry`; when its body is gone (evicted from disk meanwhile), goes upstream instead. */
  #answer(ex: Exchange, next: Next, finish: Finish, key: string, entry: CachedEntry, status: string, now: number): void | Promise<void> {
    const served = serveEntry(ex, entry, status, now, finish);
    if (served === true) return;
    if (served === false) return this.#gone(ex, next, finish, key, undefined, NO_REQUEST_DIRECTIVES);
    return served.then((ok) => (ok ? undefined : this.#gone(ex, next, finish, key, undefined, NO_REQUEST_DIRECTIVES)));
  }

  #gone(ex: Exchange, next: Next, finish: Finish, key: string, entries: readonly CachedEntry[] | undefined, directives: RequestDirectives): void | Promise<void> {
    void this.route.shared.store.delete(key);
    return this.#fetch(ex, next, finish, entries, { key, stale: undefined, directives, fwd: 'miss' });
  }

  /** Goes upstream (a miss or a revalidation), as the leader of a fill or after waiting for one. */
  #fetch(ex: Exchange, next: Next, finish: Finish, entries: readonly CachedEntry[] | undefined, ctx: FetchContext): void | Promise<void> {
    const route = this.route;
    const shared = route.shared;
    if (ctx.stale === undefined) shared.counters.misses++;
    else shared.counters.revalidations++;
    if (!route.collapse || shared.passes.has(ctx.key, Date.now())) return this.#upstream(ex, next, finish, ctx, null);
    const joined = shared.fills.join(this.#collapseKey(ctx.key, entries, ex.req.headers));
    if (joined.leader) return this.#upstream(ex, next, finish, ctx, joined.fill);
    shared.counters.collapsed++;
    return joined.fill.wait(route.lockTimeout).then((outcome) => this.#afterWait(ex, next, finish, ctx, outcome));
  }

  #afterWait(ex: Exchange, next: Next, finish: Finish, ctx: FetchContext, outcome: FillOutcome): void | Promise<void> {
    if (outcome.kind === 'stored' && !ex.res.destroyed) {
      const entry = outcome.entry;
      // The response the leader got is used for the requests collapsed with it (RFC 9111 §4).
      if (entry.vary.length === 0 || this.#variantOf(entry.vary, ex.req.headers) === entry.variant) {
        return this.#answer(ex, next, finish, ctx.key, entry, `${this.route.statusName}; fwd=${ctx.fwd}; collapsed`, Date.now());
      }
    }
    return this.#upstream(ex, next, finish, ctx, null);
  }

  #upstream(ex: Exchange, next: Next, finish: Finish, ctx: FetchContext, fill: Fill | null): void {
    ex.upstreamEdits = ctx.stale === undefined ? MISS_EDITS : revalidationEdits(ctx.stale);
    const filter = new CacheFilter(this.route, ctx, finish, fill, null);
    if (fill !== null) {
      // Followers must not wait on a request whose client went away before any answer.
      ex.res.once('close', () => filter.abandon());
    }
    ex.addResponseFilter(filter);
    next();
  }

  /** stale-while-revalidate: the client has its answer; refresh the entry unless already under way. */
  #revalidateInBackground(
    ex: Exchange,
    next: Next,
    finish: Finish,
    key: string,
    entries: readonly CachedEntry[] | undefined,
    entry: CachedEntry,
    directives: RequestDirectives,
  ): void {
    const shared = this.route.shared;
    const collapseKey = this.#collapseKey(key, entries, ex.req.headers);
    const now = Date.now();
    const started = shared.revalidating.get(collapseKey);
    if (started !== undefined && now - started < REFRESH_EXPIRY_MS) return;
    shared.revalidating.set(collapseKey, now);
    shared.counters.revalidations++;
    ex.upstreamEdits = revalidationEdits(entry);
    const done = (): void => {
      shared.revalidating.delete(collapseKey);
    };
    ex.addResponseFilter(new CacheFilter(this.route, { key, stale: entry, directives, fwd: 'stale' }, finish, null, done));
    next();
  }

  /** only-if-cached and nothing usable: 504 (RFC 9111 §5.2.1.7). */
  #notCached(ex: Exchange, finish: Finish): void {
    sendSimple(ex, 504, '', { 'cache-status': `${this.route.statusName}; fwd=miss; detail=only-if-cached` });
    finish(ex);
  }

  /** §4.4: a successful unsafe request invalidates what it targets. */
  #invalidate(ex: Exchange, status: number, headers: ResponseHeaders): null {
    if (!invalidates(status)) return null;
    const route = this.route;
    const host = ex.req.headers.host ?? '';
    const origin = `${ex.proto}://${host}`;
    const keys = new Set([route.key(ex)]);
    for (const target of relatedTargets(headers, origin)) {
      try {
        keys.add(keyOfUrl(route.keyOptions, new URL(target, `${origin}/`)));
      } catch {
        // A Host that makes no URL: nothing more to invalidate.
      }
    }
    for (const key of keys) {
      void route.shared.store.delete(key).then((n) => {
        route.shared.counters.invalidated += n;
      });
    }
    return null;
  }

  #select(entries: readonly CachedEntry[], headers: HeaderMap): CachedEntry | undefined {
    // Variants of one key mostly vary by the same names: the request's variant is made once for them.
    let names: readonly string[] = [];
    let variant = '';
    for (const entry of entries) {
      if (entry.vary.length === 0) return entry;
      if (!sameNames(entry.vary, names)) {
        names = entry.vary;
        variant = this.#variantOf(names, headers);
      }
      if (variant === entry.variant) return entry;
    }
    return undefined;
  }

  #variantOf(names: readonly string[], headers: HeaderMap): string {
    return variantKey(names, headers, this.#normalize);
  }

  /** Requests are collapsed per variant, as far as the stored variants tell what the variant is. */
  #collapseKey(key: string, entries: readonly CachedEntry[] | undefined, headers: HeaderMap): string {
    const names = entries?.[0]?.vary ?? this.route.keyHeaders;
    return names.length === 0 ? key : `${key}\n${this.#variantOf(names, headers)}`;
  }
}

/** Revalidation: our own validators replace the client's (§4.3.1). */
function revalidationEdits(entry: CachedEntry): UpstreamRequestEdits {
  const set: [string, string][] = [];
  const etag = entry.validators.etag;
  if (etag !== undefined) set.push(['if-none-match', etag]);
  const lastModified = flatGet(entry.head, 'last-modified');
  if (lastModified !== undefined) set.push(['if-modified-since', lastModified]);
  const headers: HeaderOps = { remove: CONDITIONAL_AND_RANGE, set, add: [] };
  return { method: 'GET', headers };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * normalizeVaryValue memoised (name → value → normal form, no key string made per look-up): a few
 * distinct Accept-Encoding values come back on every request, and parsing them each time would cost.
 */
function memoizedVaryNormalizer(): (name: string, value: string | readonly string[] | undefined) => string {
  const memo = new Map<string, Map<string, string>>();
  let size = 0;
  return (name, value) => {
    if (typeof value !== 'string') return normalizeVaryValue(name, value);
    let byValue = memo.get(name);
    let normal = byValue?.get(value);
    if (normal === undefined) {
      normal = normalizeVaryValue(name, value);
      if (size >= 1024) {
        memo.clear();
        size = 0;
        byValue = undefined;
      }
      if (byValue === undefined) memo.set(name, (byValue = new Map()));
      byValue.set(value, normal);
      size++;
    }
    return normal;
  };
}
