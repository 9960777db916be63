/**
 * The configuration of web acceleration: the HTTP cache (`cache`, docs/caching.md) and response
 * compression (`compress`, docs/compression.md). Both are off unless enabled, globally or per
 * route; a route's block overrides the global one field by field. Imported by schema.ts, which
 * stays the one source of config types.
 */
import { z } from 'zod';
import { TOKEN, duration, headerName, nameSchema, size } from './units.ts';
import { unknownName } from './suggest.ts';

const token = z.string().regex(TOKEN, 'must be a token (letters, digits, - _ . and the like)');
const storeName = nameSchema('store');

/** Default limits per store type. */
export const STORE_DEFAULTS = {
  memory: { max_size: 256 * 1024 ** 2, max_object_size: 8 * 1024 ** 2 },
  disk: { max_size: 1024 ** 3, max_object_size: 128 * 1024 ** 2 },
  /** The per-instance first tier's size, and the cap per object in both tiers. */
  redis: { max_size: 64 * 1024 ** 2, max_object_size: 1024 ** 2 },
} as const;

/** Where stored responses live. */
const store = z
  .strictObject({
    /**
     * memory: an LRU bounded by bytes (lost on restart); disk: files under `path` (kept across
     * restarts); redis: memory in front of Redis, shared by every instance (needs `state.redis`).
     */
    type: z.enum(['memory', 'disk', 'redis'], { error: 'must be memory, disk or redis' }).default('memory'),
    /** The directory of a disk store (created if missing; one process per directory). */
    path: z.string().min(1).optional(),
    /** Bytes the store may hold; the least recently used entries go first. Default 256mb (memory), 1gb (disk), 64mb (redis: the per-instance tier; Redis's maxmemory bounds the shared one). */
    max_size: size.optional(),
    /** The largest response body stored. Default 8mb (memory), 128mb (disk), 1mb (redis, in both tiers). */
    max_object_size: size.optional(),
  })
  .superRefine((value, ctx) => {
    if (value.type === 'disk' && value.path === undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'a disk store needs a path' });
    if (value.type !== 'disk' && value.path !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'only a disk store has a path' });
  })
  .transform((value) => ({
    type: value.type,
    path: value.path,
    max_size: value.max_size ?? STORE_DEFAULTS[value.type].max_size,
    max_object_size: value.max_object_size ?? STORE_DEFAULTS[value.type].max_object_size,
  }));

/** What the cache key is made of (beyond the path, always in it). */
const cacheKey = z.strictObject({
  /** Include the Host header (with its port). */
  host: z.boolean().optional(),
  /** Include the query string. */
  query: z.boolean().optional(),
  /** Query parameters left out of the key (e.g. utm_source). */
  ignore_query: z.array(z.string().min(1)).optional(),
  /** Sort query parameters, so that their order does not matter. */
  sort_query: z.boolean().optional(),
  /** Request headers whose values select separate entries (as if the origin sent Vary with them). */
  headers: z.array(headerName).optional(),
});

/** Requests that skip the cache (neither served from it nor stored): any named item present and not empty. */
const cacheBypass = z.strictObject({
  headers: z.array(headerName).optional(),
  cookies: z.array(z.string().min(1)).optional(),
  query: z.array(z.string().min(1)).optional(),
});

/** The cache policy fields a route may override. */
const cachePolicyFields = {
  /** The store (from `cache.stores`); routes naming the same store share its entries. */
  store: storeName.optional(),
  key: cacheKey.optional(),
  bypass: cacheBypass.optional(),
  /** Heuristic freshness (RFC 9111 §4.2.2): this fraction of the time since Last-Modified; 0 disables. */
  heuristic_fraction: z.number().min(0).max(1).optional(),
  /** The longest heuristic freshness. */
  heuristic_max: duration.optional(),
  /** Serve stale while revalidating in the background this long, when the response does not say (RFC 5861). */
  stale_while_revalidate: duration.optional(),
  /** Serve stale when the origin fails this long, when the response does not say (RFC 5861). */
  stale_if_error: duration.optional(),
  /** Honour the request's Cache-Control (no-cache, max-age, min-fresh, max-stale, only-if-cached). */
  request_cache_control: z.boolean().optional(),
  /** Collapse concurrent misses of one variant into one upstream request. */
  collapse: z.boolean().optional(),
  /** How long a collapsed request waits for the first one before going upstream itself. */
  lock_timeout: duration.optional(),
};

export const CACHE_DEFAULTS = {
  store: 'default',
  key: { host: true, query: true, ignore_query: [] as string[], sort_query: false, headers: [] as string[] },
  bypass: { headers: [] as string[], cookies: [] as string[], query: [] as string[] },
  heuristic_fraction: 0.1,
  heuristic_max: 86_400_000,
  stale_while_revalidate: 0,
  stale_if_error: 0,
  request_cache_control: true,
  collapse: true,
  lock_timeout: 5_000,
};

/** Top-level `cache`: the stores, and the policy every route with caching starts from. */
export const cacheSchema = z
  .strictObject({
    /** Cache every route that forwards (a route may still say `cache: false`). */
    enabled: z.boolean().default(false),
    /** The cache's name in the Cache-Status response header (RFC 9211). */
    status_name: token.default('gatehouse'),
    /** Named stores; "default" (memory, 256mb) exists unless declared. */
    stores: z.record(storeName, store).default({}),
    ...cachePolicyFields,
  })
  .prefault({});

/** true / false is short for { enabled: true / false } (a union would hide the nested errors). */
const enabledShorthand = (value: unknown): unknown => (typeof value === 'boolean' ? { enabled: value } : value);

/** A route's `cache`: true / false, or fields overriding the global ones (enabled unless it says otherwise). */
const routeCacheObject = z.strictObject({ enabled: z.boolean().default(true), ...cachePolicyFields });
export const routeCacheSchema = z.preprocess(enabledShorthand, routeCacheObject);

// --- compression ---------------------------------------------------------------------------------

/** Encodings Gatehouse compresses with. */
export const ENCODINGS = ['zstd', 'br', 'gzip'] as const;

/** Content types compressed by default: text formats; images, video, archives and fonts in WOFF are already compressed. */
export const DEFAULT_COMPRESS_TYPES = [
  'text/html',
  'text/css',
  'text/plain',
  'text/xml',
  'text/javascript',
  'text/csv',
  'text/markdown',
  'application/javascript',
  'application/json',
  'application/xml',
  'application/xhtml+xml',
  'application/rss+xml',
  'application/atom+xml',
  'application/ld+json',
  'application/manifest+json',
  'application/geo+json',
  'application/problem+json',
  'application/graphql-response+json',
  'application/wasm',
  'image/svg+xml',
  'image/x-icon',
  'font/ttf',
  'font/otf',
];

const mimePattern = z
  .string()
  .regex(/^[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+)$/i, 'must be a media type such as text/html, or a family such as text/*');

const compressLevels = z.strictObject({
  /** gzip level, 1 (fastest) to 9 (smallest). */
  gzip: z.number().int().min(1).max(9).optional(),
  /** Brotli quality, 0 (fastest) to 11 (smallest). */
  br: z.number().int().min(0).max(11).optional(),
  /** Zstandard level, 1 (fastest) to 19 (smallest). */
  zstd: z.number().int().min(1).max(19).optional(),
});

const encodingList = z
  .array(z.enum(ENCODINGS, { error: 'must be zstd, br or gzip' }))
  .min(1, 'name at least one encoding')
  .refine((list) => new Set(list).size === list.length, { message: 'lists an encoding twice' });

const compressFields = {
  /** Encodings offered, in the server's order of preference (ties in the client's q-values go to the first). */
  encodings: encodingList.optional(),
  /** Content types compressed: exact (text/html) or a family (text/*). */
  types: z.array(mimePattern).min(1).optional(),
  /** Responses whose Content-Length is below this are sent as they are. */
  min_size: size.optional(),
  /** Compression levels, chosen for speed. */
  level: compressLevels.optional(),
  /** Decompress gzip, br and zstd responses for clients that do not accept the backend's encoding. */
  decompress: z.boolean().optional(),
};

export const COMPRESS_DEFAULTS = {
  encodings: ['zstd', 'br', 'gzip'] as (typeof ENCODINGS)[number][],
  types: DEFAULT_COMPRESS_TYPES,
  min_size: 512,
  level: { gzip: 5, br: 4, zstd: 3 },
  decompress: false,
};

/** Top-level `compress`: the settings every route with compression starts from. */
export const compressSchema = z
  .strictObject({
    /** Compress on every route that forwards (a route may still say `compress: false`). */
    enabled: z.boolean().default(false),
    ...compressFields,
  })
  .prefault({});

/** A route's `compress`: true / false, or fields overriding the global ones. */
const routeCompressObject = z.strictObject({ enabled: z.boolean().default(true), ...compressFields });
export const routeCompressSchema = z.preprocess(enabledShorthand, routeCompressObject);

export type CacheConfig = z.output<typeof cacheSchema>;
export type RouteCacheConfig = z.output<typeof routeCacheSchema>;
/** A route's `cache` object as written (it may also be true or false). */
export type RouteCacheInput = z.input<typeof routeCacheObject>;
/** A route's `compress` object as written (it may also be true or false). */
export type RouteCompressInput = z.input<typeof routeCompressObject>;
export type CompressConfig = z.output<typeof compressSchema>;
export type RouteCompressConfig = z.output<typeof routeCompressSchema>;
export type StoreConfig = CacheConfig['stores'][string];
export type Encoding = (typeof ENCODINGS)[number];

/** A problem found by looking at the whole configuration (reported by the loader with its position). */
export interface AccelerationProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

interface RouteLike {
  readonly upstream?: string | undefined;
  readonly cache?: RouteCacheConfig | undefined;
  readonly compress?: RouteCompressConfig | undefined;
}

/** Checks that need the whole file: store names, disk paths, cache and compression on routes that do not forward. */
export function accelerationProblems(cache: CacheConfig, routes: readonly (RouteLike | undefined)[]): AccelerationProblem[] {
  const problems: AccelerationProblem[] = [];
  const known = new Set(['default', ...Object.keys(cache.stores)]);
  const unknownStore = (name: string | undefined, path: (string | number)[]): void => {
    if (name === undefined || known.has(name)) return;
    problems.push({ path, message: unknownName('cache store', name, [...known]) });
  };
  unknownStore(cache.store, ['cache', 'store']);
  const paths = new Map<string, string>();
  for (const [name, store] of Object.entries(cache.stores)) {
    if (store.type !== 'disk' || store.path === undefined) continue;
    const other = paths.get(store.path);
    if (other !== undefined) problems.push({ path: ['cache', 'stores', name, 'path'], message: `store "${other}" already uses this directory` });
    else paths.set(store.path, name);
  }
  routes.forEach((route, i) => {
    // A route that is not valid on its own (its problems are reported already).
    if (route === undefined) return;
    const own = route.cache;
    if (own !== undefined) unknownStore(own.store, ['routes', i, 'cache', 'store']);
    if (route.upstream !== undefined) return;
    if (own?.enabled === true) {
      problems.push({ path: ['routes', i, 'cache'], message: 'caching applies to routes that forward to an upstream' });
    }
    if (route.compress?.enabled === true) {
      problems.push({ path: ['routes', i, 'compress'], message: 'compression applies to routes that forward to an upstream' });
    }
  });
  return problems;
}

/** A config block as the schema gives it: any field of the settings may be absent, and so may those of a nested block. */
type Overrides<T> = {
  readonly [K in keyof T]?: (T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? { readonly [J in keyof T[K]]?: T[K][J] | undefined } : T[K]) | undefined;
};

/**
 * The settings a route runs with for cache or compress: the defaults, overridden field by field by
 * the global block and then by the route's own (a nested block such as `key` or `level` is merged
 * the same way; lists are replaced). Null when the route does not forward, or the feature is off
 * for it (the route's `enabled` wins over the global one).
 */
export function routeSettings<T extends object>(
  defaults: T,
  global: Overrides<T> & { readonly enabled: boolean },
  own: (Overrides<T> & { readonly enabled: boolean }) | undefined,
  forwards: boolean,
): T | null {
  if (!forwards || !(own ?? global).enabled) return null;
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const block of [global, own]) {
    for (const [name, value] of Object.entries(block ?? {})) {
      if (value === undefined || !(name in defaults)) continue;
      const base = out[name];
      out[name] = isBlock(base) && isBlock(value) ? { ...base, ...definedOnly(value) } : value;
    }
  }
  return out as T;
}

function isBlock(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The fields of a config block that are set (exactOptionalPropertyTypes: no undefined values), for
 * merging a route's block over the global one field by field.
 */
export function definedOnly<T extends object>(value: T | undefined): { [K in keyof T]?: Exclude<T[K], undefined> } {
  if (value === undefined) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
