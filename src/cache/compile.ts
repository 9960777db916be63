/**
 * Compiles the `cache` configuration into per-route cache middlewares, once per snapshot, and
 * holds what the snapshot acquired from the registry (the stores, kept across reloads by name or
 * directory). Also the entry point of purges (admin API) and cache statistics.
 */
import type { Config, RouteConfig } from '../config/schema.ts';
import { CACHE_DEFAULTS, routeSettings as mergeRouteSettings, STORE_DEFAULTS, type CacheConfig } from '../config/acceleration-schema.ts';
import type { Exchange } from '../core/exchange.ts';
import type { Registry } from '../core/registry.ts';
import { compileKey, keyOfUrl, prefixOfUrl, type KeyOptions } from './key.ts';
import { CacheMiddleware, type CacheRoute } from './middleware.ts';
import { acquireSharedCache, storeKey, type SharedCache, type StoreSpec } from './shared.ts';

/** What to purge: one URL (all its variants), every URL under a prefix, a tag, or everything. */
export type PurgeSelector =
  | { readonly url: string }
  | { readonly prefix: string }
  | { readonly tag: string }
  | { readonly all: true };

/** The caches of one snapshot. */
export class CacheSet {
  readonly #byRoute: (CacheMiddleware | null)[];
  /** Registry keys acquired, released with the snapshot. */
  readonly #held: string[];
  readonly #stores: Map<string, SharedCache>;

  constructor(byRoute: (CacheMiddleware | null)[], held: string[], stores: Map<string, SharedCache>) {
    this.#byRoute = byRoute;
    this.#held = held;
    this.#stores = stores;
  }

  /** The cache middleware of route `index`, or null when the route does not cache. */
  middlewareFor(index: number): CacheMiddleware | null {
    return this.#byRoute[index] ?? null;
  }

  get active(): boolean {
    return this.#stores.size > 0;
  }

  release(registry: Registry): void {
    for (const key of this.#held) registry.releaseShared(key);
  }

  /** Removes what the selector names from every store in use; resolves with the entries removed. */
  async purge(selector: PurgeSelector): Promise<number> {
    const jobs = new Map<string, Promise<number>>();
    if ('tag' in selector || 'all' in selector) {
      for (const [name, shared] of this.#stores) {
        jobs.set(name, 'tag' in selector ? shared.store.deleteTag(selector.tag) : shared.store.deletePrefix(''));
      }
    } else {
      const url = new URL('url' in selector ? selector.url : selector.prefix);
      for (const middleware of this.#byRoute) {
        if (middleware === null) continue;
        const route = middleware.route;
        const key = 'url' in selector ? keyOfUrl(route.keyOptions, url) : prefixOfUrl(route.keyOptions, url);
        // Routes sharing a store and a key shape purge once.
        const job = `${route.shared.name}\n${key}`;
        if (!jobs.has(job)) jobs.set(job, 'url' in selector ? route.shared.store.delete(key) : route.shared.store.deletePrefix(key));
      }
    }
    const counts = await Promise.all(jobs.values());
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Per-store counters and sizes, for the admin API: keys in the configuration's snake_case. */
  stats(): Record<string, unknown> {
    return Object.fromEntries([...this.#stores].map(([name, shared]) => [name, storeStats(shared)]));
  }

  /** Resolves once every store can answer (disk stores have read their index). */
  async ready(): Promise<void> {
    await Promise.all([...this.#stores.values()].map((s) => s.store.ready()));
  }
}

function storeStats(shared: SharedCache): Record<string, unknown> {
  const store = shared.store.stats();
  const c = shared.counters;
  return {
    kind: store.kind,
    entries: store.entries,
    bytes: store.bytes,
    max_size: store.maxSize,
    evictions: store.evictions,
    hits: c.hits,
    stale_hits: c.staleHits,
    misses: c.misses,
    revalidations: c.revalidations,
    not_modified: c.notModified,
    stored: c.stored,
    collapsed: c.collapsed,
    stale_on_error: c.staleOnError,
    bypassed: c.bypassed,
    invalidated: c.invalidated,
    collapsing: shared.fills.size,
    ...(store.tiers === undefined ? {} : { tiers: store.tiers }),
  };
}

/** Compiles every route's cache; acquires the stores in use from the registry. */
export function compileCaches(config: Config, registry: Registry): CacheSet {
  const global = config.cache;
  const byRoute: (CacheMiddleware | null)[] = [];
  const held: string[] = [];
  const stores = new Map<string, SharedCache>();
  try {
    for (const route of config.routes) {
      const settings = routeSettings(global, route);
      if (settings === null) {
        byRoute.push(null);
        continue;
      }
      const storeName = settings.store;
      let shared = stores.get(storeName);
      if (shared === undefined) {
        const spec = storeSpec(global, storeName);
        shared = acquireSharedCache(registry, spec);
        held.push(storeKey(spec));
        stores.set(storeName, shared);
      }
      byRoute.push(new CacheMiddleware(compileRoute(settings, shared, global.status_name)));
    }
  } catch (error: unknown) {
    for (const key of held) registry.releaseShared(key);
    throw error;
  }
  return new CacheSet(byRoute, held, stores);
}

type Settings = typeof CACHE_DEFAULTS;

/** The route's effective settings (global, overridden field by field), or null when it does not cache. */
function routeSettings(global: CacheConfig, route: RouteConfig): Settings | null {
  return mergeRouteSettings(CACHE_DEFAULTS, global, route.cache, route.upstream !== undefined);
}

function storeSpec(global: CacheConfig, name: string): StoreSpec {
  const declared = global.stores[name];
  if (declared === undefined) {
    // The loader rejects unknown names; only "default" may be left undeclared.
    const limits = { maxSize: STORE_DEFAULTS.memory.max_size, maxObjectSize: STORE_DEFAULTS.memory.max_object_size };
    return { name, type: 'memory', limits };
  }
  const limits = { maxSize: declared.max_size, maxObjectSize: declared.max_object_size };
  if (declared.type === 'disk') return { name, type: 'disk', path: declared.path as string, limits };
  return { name, type: declared.type, limits };
}

function compileRoute(settings: Settings, shared: SharedCache, statusName: string): CacheRoute {
  const keyOptions: KeyOptions = {
    host: settings.key.host,
    query: settings.key.query,
    ignoreQuery: settings.key.ignore_query,
    sortQuery: settings.key.sort_query,
  };
  return {
    shared,
    key: compileKey(keyOptions),
    keyOptions,
    keyHeaders: [...new Set(settings.key.headers.map((h) => h.toLowerCase()))].sort(),
    bypass: compileBypass(settings.bypass),
    policy: {
      heuristicFraction: settings.heuristic_fraction,
      heuristicMax: Math.floor(settings.heuristic_max / 1000),
      staleWhileRevalidate: Math.floor(settings.stale_while_revalidate / 1000),
      staleIfError: Math.floor(settings.stale_if_error / 1000),
    },
    requestDirectives: settings.request_cache_control,
    collapse: settings.collapse,
    lockTimeout: settings.lock_timeout,
    statusName,
  };
}

/** One predicate for the route's bypass rules; null when it has none. */
function compileBypass(bypass: Settings['bypass']): ((ex: Exchange) => boolean) | null {
  const headers = bypass.headers.map((h) => h.toLowerCase());
  const cookies = new Set(bypass.cookies);
  const query = bypass.query;
  if (headers.length === 0 && cookies.size === 0 && query.length === 0) return null;
  return (ex) => {
    for (const name of headers) {
      const value = ex.req.headers[name];
      if (value !== undefined && value !== '') return true;
    }
    if (cookies.size > 0) {
      const cookie = ex.req.headers.cookie;
      if (cookie !== undefined) {
        for (const pair of cookie.split(';')) {
          const eq = pair.indexOf('=');
          if (eq > 0 && cookies.has(pair.slice(0, eq).trim()) && pair.slice(eq + 1).trim() !== '') return true;
        }
      }
    }
    if (query.length > 0 && ex.info.rawQuery !== '') {
      for (const name of query) if ((ex.info.query.get(name) ?? '') !== '') return true;
    }
    return false;
  };
}
