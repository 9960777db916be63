/**
 * The rules of a shared HTTP cache (RFC 9111, with RFC 5861's stale-while-revalidate and
 * stale-if-error) as pure functions: what may be stored, for how long it is fresh, when a stored
 * response may be used, and how conditional and range requests are answered from it.
 * Times are milliseconds since the epoch; ages and lifetimes are seconds, as in the headers.
 */
import { deltaSeconds, parseCacheControl, qualifiedFields, type Directives } from './cache-control.ts';

type HeaderValue = string | readonly string[] | undefined;
/** Lower-case header names, as node:http and undici give them. */
export type HeaderMap = Readonly<Record<string, HeaderValue>>;

/** RFC 9110 §15.1: statuses cacheable by default, which may get a heuristic lifetime (RFC 9111 §4.2.2). */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);

/** Statuses whose semantics this cache implements, for the must-understand directive (RFC 9111 §5.2.2.3). */
const UNDERSTOOD: ReadonlySet<number> = new Set([...HEURISTICALLY_CACHEABLE, 302, 303, 307, 400, 403, 500, 502, 503, 504]);

/** The configured parts of the policy. */
export interface PolicyOptions {
  /** Heuristic lifetime as a fraction of (Date - Last-Modified); 0 disables heuristics. */
  readonly heuristicFraction: number;
  /** Upper bound of a heuristic lifetime, seconds. */
  readonly heuristicMax: number;
  /** stale-while-revalidate allowance when the response gives none, seconds. */
  readonly staleWhileRevalidate: number;
  /** stale-if-error allowance when the response gives none, seconds. */
  readonly staleIfError: number;
}

/** Why a response is not stored; the `detail` of its Cache-Status. */
export type NotStorableReason =
  | 'method'
  | 'status'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'set-cookie'
  | 'vary-star'
  | 'no-freshness'
  | 'request-no-store';

/** How a storable response is to be kept. */
export interface StoragePlan {
  readonly storable: true;
  /** Freshness lifetime, seconds (RFC 9111 §4.2.1). */
  readonly lifetime: number;
  /** Every reuse must be validated first (no-cache). */
  readonly noCache: boolean;
  /** Never served stale: must-revalidate, proxy-revalidate or s-maxage (§4.2.4, §5.2.2.2, §5.2.2.8). */
  readonly noStale: boolean;
  /** Seconds past freshness it may be served while revalidating in the background (RFC 5861 §3). */
  readonly staleWhileRevalidate: number;
  /** Seconds past freshness it may be served when the origin fails (RFC 5861 §4). */
  readonly staleIfError: number;
  /** Header fields not to store: those named by a qualified private or no-cache (§5.2.2.4, §5.2.2.7). */
  readonly omit: readonly string[];
}

export type StorageDecision = StoragePlan | { readonly storable: false; readonly reason: NotStorableReason };

/** What of the request matters for storing its response. */
export interface RequestFacts {
  readonly method: string;
  readonly directives: Directives;
  readonly authorization: boolean;
}

/** Decides whether a shared cache may store this response (RFC 9111 §3, §3.5) and how. */
export function storagePlan(request: RequestFacts, status: number, headers: HeaderMap, options: PolicyOptions, now: number): StorageDecision {
  if (request.method !== 'GET') return { storable: false, reason: 'method' };
  // Partial content and 304 are not complete responses; 1xx are not final.
  if (status < 200 || status === 206 || status === 304) return { storable: false, reason: 'status' };
  const cc = parseCacheControl(headers['cache-control']);
  const understood = cc.has('must-understand') && UNDERSTOOD.has(status);
  if (cc.has('must-understand') && !understood) return { storable: false, reason: 'status' };
  if (cc.has('no-store') && !understood) return { storable: false, reason: 'no-store' };
  if (request.directives.has('no-store')) return { storable: false, reason: 'request-no-store' };
  const privateArg = cc.get('private');
  // A qualification that names no field is taken as none (the safe reading).
  if (privateArg === true || privateArg?.trim() === '') return { storable: false, reason: 'private' };
  // §3.5: a request with credentials is stored only when the response says a shared cache may.
  if (request.authorization && !cc.has('must-revalidate') && !cc.has('public') && !cc.has('s-maxage')) {
    return { storable: false, reason: 'authorization' };
  }
  if (varyNames(headers['vary']) === null) return { storable: false, reason: 'vary-star' };
  const omit = [...qualifiedFields(cc, 'private'), ...qualifiedFields(cc, 'no-cache')];
  // One user's cookie must never be handed to another: a response setting a cookie is stored only
  // when the origin said the cookie is not to be stored (private="set-cookie"), as nginx and
  // Varnish do by default. RFC 9111 §7.3 leaves this to the cache.
  if (headers['set-cookie'] !== undefined && !omit.includes('set-cookie')) return { storable: false, reason: 'set-cookie' };
  const explicit = explicitLifetime(cc, headers, now);
  const cacheableByDefault = HEURISTICALLY_CACHEABLE.has(status) || cc.has('public');
  if (explicit === undefined && !cacheableByDefault) return { storable: false, reason: 'status' };
  const lifetime = explicit ?? heuristicLifetime(headers, options, now);
  const noCacheArg = cc.get('no-cache');
  const noCache = noCacheArg === true || noCacheArg?.trim() === '';
  const noStale = noCache || cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage');
  const swr = noStale ? 0 : (positive(deltaSeconds(cc, 'stale-while-revalidate')) ?? options.staleWhileRevalidate);
  const sie = noStale ? 0 : (positive(deltaSeconds(cc, 'stale-if-error')) ?? options.staleIfError);
  const validator = headers['etag'] !== undefined || headers['last-modified'] !== undefined;
  // A response that can never be reused without fetching it again whole is not worth storing.
  if (lifetime === 0 && !validator && swr === 0 && sie === 0) return { storable: false, reason: 'no-freshness' };
  return { storable: true, lifetime, noCache, noStale, staleWhileRevalidate: swr, staleIfError: sie, omit };
}

function positive(value: number | undefined): number | undefined {
  return value === undefined || value < 0 ? undefined : value;
}

/**
 * §4.2.1 for a shared cache: s-maxage, then max-age, then Expires - Date. An invalid value makes
 * the response stale (0). Undefined when none is given.
 */
export function explicitLifetime(cc: Directives, headers: HeaderMap, now: number): number | undefined {
  const sMaxAge = deltaSeconds(cc, 's-maxage');
  if (sMaxAge !== undefined) return Math.max(0, sMaxAge);
  const maxAge = deltaSeconds(cc, 'max-age');
  if (maxAge !== undefined) return Math.max(0, maxAge);
  const expires = first(headers['expires']);
  if (expires === undefined) return undefined;
  const expiresMs = parseHttpDate(expires);
  if (Number.isNaN(expiresMs)) return 0;
  const date = parseHttpDate(first(headers['date']));
  const base = Number.isNaN(date) ? now : date;
  return Math.max(0, Math.floor((expiresMs - base) / 1000));
}

/** §4.2.2: a fraction of the time since Last-Modified, capped; 0 without Last-Modified. */
export function heuristicLifetime(headers: HeaderMap, options: PolicyOptions, now: number): number {
  if (options.heuristicFraction <= 0) return 0;
  const lastModified = parseHttpDate(first(headers['last-modified']));
  if (Number.isNaN(lastModified)) return 0;
  const date = parseHttpDate(first(headers['date']));
  const since = (Number.isNaN(date) ? now : date) - lastModified;
  if (since <= 0) return 0;
  return Math.min(options.heuristicMax, Math.floor((since / 1000) * options.heuristicFraction));
}

/**
 * §4.2.3: the response's age when it arrived (corrected_initial_age), seconds, from its Age and
 * Date headers and when the request was sent and the response received.
 */
export function initialAge(headers: HeaderMap, requestTime: number, responseTime: number): number {
  const date = parseHttpDate(first(headers['date']));
  const apparentAge = Number.isNaN(date) ? 0 : Math.max(0, (responseTime - date) / 1000);
  const ageHeader = first(headers['age']);
  const ageValue = ageHeader !== undefined && /^\d+$/.test(ageHeader.trim()) ? Number(ageHeader.trim()) : 0;
  const responseDelay = Math.max(0, (responseTime - requestTime) / 1000);
  return Math.max(apparentAge, ageValue + responseDelay);
}

/** What a stored response needs for the decisions below. */
export interface StoredFacts {
  /** ms epoch when it (or the 304 that last validated it) was received. */
  readonly responseTime: number;
  /** Age when received, seconds (§4.2.3 corrected_initial_age). */
  readonly initialAge: number;
  /** Freshness lifetime, seconds. */
  readonly lifetime: number;
  readonly noCache: boolean;
  readonly noStale: boolean;
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
}

/** §4.2.3 current_age, seconds (fractional). */
export function currentAge(stored: StoredFacts, now: number): number {
  return stored.initialAge + Math.max(0, now - stored.responseTime) / 1000;
}

/** The request's own Cache-Control (§5.2.1), when the cache honours it. */
export interface RequestDirectives {
  readonly noCache: boolean;
  readonly maxAge: number | undefined;
  readonly minFresh: number | undefined;
  /** max-stale: undefined when absent, Infinity without an argument. */
  readonly maxStale: number | undefined;
  readonly onlyIfCached: boolean;
  readonly staleIfError: number | undefined;
}

export const NO_REQUEST_DIRECTIVES: RequestDirectives = {
  noCache: false,
  maxAge: undefined,
  minFresh: undefined,
  maxStale: undefined,
  onlyIfCached: false,
  staleIfError: undefined,
};

export function requestDirectives(cc: Directives): RequestDirectives {
  if (cc.size === 0) return NO_REQUEST_DIRECTIVES;
  const maxStaleArg = cc.get('max-stale');
  const maxStale = maxStaleArg === undefined ? undefined : maxStaleArg === true ? Infinity : Math.max(0, deltaSeconds(cc, 'max-stale') ?? 0);
  return {
    noCache: cc.has('no-cache'),
    maxAge: positive(deltaSeconds(cc, 'max-age')),
    minFresh: positive(deltaSeconds(cc, 'min-fresh')),
    maxStale,
    onlyIfCached: cc.has('only-if-cached'),
    staleIfError: positive(deltaSeconds(cc, 'stale-if-error')),
  };
}

/**
 * How a stored response may be used for a request (§4, §4.2.4, RFC 5861):
 * - fresh: serve it;
 * - stale-ok: serve it stale (the client's max-stale allows it);
 * - stale-while-revalidate: serve it stale and refresh it in the background;
 * - revalidate: ask the origin first (`requested` when only the request's directives forced it).
 */
export type Use =
  | { readonly kind: 'fresh'; readonly ttl: number }
  | { readonly kind: 'stale-ok'; readonly ttl: number }
  | { readonly kind: 'stale-while-revalidate'; readonly ttl: number }
  | { readonly kind: 'revalidate'; readonly ttl: number; readonly requested: boolean };

export function decideUse(stored: StoredFacts, request: RequestDirectives, now: number): Use {
  const age = currentAge(stored, now);
  const ttl = stored.lifetime - age;
  const fresh = ttl > 0 && !stored.noCache;
  if (fresh) {
    const tooOld = request.maxAge !== undefined && age > request.maxAge;
    const notFreshEnough = request.minFresh !== undefined && ttl < request.minFresh;
    if (request.noCache || tooOld || notFreshEnough) return { kind: 'revalidate', ttl, requested: true };
    return { kind: 'fresh', ttl };
  }
  if (stored.noStale || request.noCache) return { kind: 'revalidate', ttl, requested: false };
  const staleness = -ttl;
  if (request.maxStale !== undefined && staleness <= request.maxStale && (request.maxAge === undefined || age <= request.maxAge)) {
    return { kind: 'stale-ok', ttl };
  }
  if (staleness <= stored.staleWhileRevalidate && request.maxAge === undefined && request.minFresh === undefined) {
    return { kind: 'stale-while-revalidate', ttl };
  }
  return { kind: 'revalidate', ttl, requested: false };
}

/** RFC 5861 §4: may the stored response answer a request whose revalidation failed? */
export function staleIfErrorAllows(stored: StoredFacts, request: RequestDirectives, now: number): boolean {
  if (stored.noStale) return false;
  const staleness = currentAge(stored, now) - stored.lifetime;
  const allowance = Math.max(stored.staleIfError, request.staleIfError ?? 0);
  return staleness <= allowance;
}

/** RFC 5861 §4: the statuses that count as an error for stale-if-error. */
export function isErrorStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}

// --- Vary (§4.1) ---------------------------------------------------------------------------------

/** The Vary field names, lower case, sorted and unique; null for `Vary: *` (never matches). */
export function varyNames(value: HeaderValue): string[] | null {
  if (value === undefined) return [];
  const names = new Set<string>();
  for (const part of typeof value === 'string' ? [value] : value) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      if (name === '*') return null;
      if (name !== '') names.add(name);
    }
  }
  return [...names].sort();
}

/** Marks an absent header in a variant key: absent and empty are different (§4.1). */
const ABSENT = '\u0000';

/**
 * One request header's value normalised for variant matching (§4.1 allows normalisation with
 * identical semantics): Accept-Encoding becomes the sorted set of acceptable codings (q > 0),
 * others lose insignificant whitespace and case where the field is case-insensitive.
 */
export function normalizeVaryValue(name: string, value: HeaderValue): string {
  if (value === undefined) return ABSENT;
  const text = typeof value === 'string' ? value : value.join(', ');
  if (name === 'accept-encoding') {
    const codings = new Set<string>();
    for (const part of text.split(',')) {
      const [coding, ...params] = part.split(';');
      const token = (coding ?? '').trim().toLowerCase();
      if (token === '') continue;
      const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('q='));
      if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
      codings.add(token);
    }
    return [...codings].sort().join(',');
  }
  const squeezed = text
    .split(',')
    .map((p) => p.trim().replace(/\s*;\s*/g, ';').replace(/\s+/g, ' '))
    .filter((p) => p !== '')
    .join(',');
  return name === 'accept-language' || name === 'accept' ? squeezed.toLowerCase() : squeezed;
}

/**
 * The variant key of a request for the given Vary names ('' when there are none); `normalize`
 * may be a memoised normalizeVaryValue.
 */
export function variantKey(
  names: readonly string[],
  requestHeaders: HeaderMap,
  normalize: (name: string, value: HeaderValue) => string = normalizeVaryValue,
): string {
  let key = '';
  for (const name of names) key += `${name}:${normalize(name, requestHeaders[name])}\n`;
  return key;
}

// --- Conditional requests (RFC 9110 §13, RFC 9111 §4.3.2) ---------------------------------------

/** The validators of a stored response. */
export interface Validators {
  readonly etag: string | undefined;
  /** Last-Modified, ms epoch, NaN when absent. */
  readonly lastModified: number;
  /** Date, ms epoch, NaN when absent. */
  readonly date: number;
}

/** Splits an If-Match / If-None-Match list into entity-tags (keeping W/ prefixes); ['*'] for any. */
export function entityTags(value: string): string[] {
  const out: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  while ((match = re.exec(value)) !== null && match[0] !== '') out.push(match[1] as string);
  return out;
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** Weak comparison (RFC 9110 §8.8.3.2): the opaque tags match, whatever their W/ prefixes. */
export function weakMatch(a: string, b: string): boolean {
  return opaque(a) === opaque(b);
}

/** Strong comparison: both strong and identical. */
export function strongMatch(a: string, b: string): boolean {
  return !a.startsWith('W/') && !b.startsWith('W/') && a === b;
}

export type ConditionalOutcome = 'none' | 'not-modified' | 'precondition-failed';

/**
 * Evaluates the preconditions of a GET or HEAD against a response the cache would send
 * (RFC 9110 §13.2.2), in the specified order. Only 2xx responses are subject to them.
 */
export function evaluateConditionals(headers: HeaderMap, status: number, validators: Validators): ConditionalOutcome {
  if (status < 200 || status > 299) return 'none';
  const ifMatch = first(headers['if-match']);
  if (ifMatch !== undefined) {
    const tags = entityTags(ifMatch);
    const etag = validators.etag;
    if (!tags.includes('*') && (etag === undefined || !tags.some((t) => strongMatch(t, etag)))) return 'precondition-failed';
  } else {
    const ius = parseHttpDate(first(headers['if-unmodified-since']));
    if (!Number.isNaN(ius) && (Number.isNaN(validators.lastModified) || validators.lastModified > ius)) return 'precondition-failed';
  }
  const ifNoneMatch = first(headers['if-none-match']);
  if (ifNoneMatch !== undefined) {
    const tags = entityTags(ifNoneMatch);
    const etag = validators.etag;
    if (tags.includes('*') || (etag !== undefined && tags.some((t) => weakMatch(t, etag)))) return 'not-modified';
    return 'none';
  }
  const ims = parseHttpDate(first(headers['if-modified-since']));
  if (!Number.isNaN(ims)) {
    const modified = Number.isNaN(validators.lastModified) ? validators.date : validators.lastModified;
    if (!Number.isNaN(modified) && modified <= ims) return 'not-modified';
  }
  return 'none';
}

/** True when the request carries a conditional the cache evaluates itself. */
export function hasConditionals(headers: HeaderMap): boolean {
  return (
    headers['if-none-match'] !== undefined ||
    headers['if-modified-since'] !== undefined ||
    headers['if-match'] !== undefined ||
    headers['if-unmodified-since'] !== undefined
  );
}

// --- Range requests (RFC 9110 §14) ---------------------------------------------------------------

export type RangeOutcome = { readonly start: number; readonly end: number } | 'unsatisfiable' | null;

/**
 * A single byte range of a body of `size` bytes: inclusive start and end, 'unsatisfiable' (416),
 * or null when the header is to be ignored (absent, not bytes, malformed or several ranges: the
 * whole response is sent, which §14.2 allows).
 */
export function parseRange(value: string | undefined, size: number): RangeOutcome {
  if (value === undefined) return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (match === null) return null;
  const [, from, to] = match as unknown as [string, string, string];
  if (from === '' && to === '') return null;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  if (start >= size) return 'unsatisfiable';
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (end < start) return null;
  return { start, end };
}

/** If-Range (§13.1.5): the range applies only when the validator matches strongly. */
export function ifRangeMatches(value: string | undefined, validators: Validators): boolean {
  if (value === undefined) return true;
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) {
    return validators.etag !== undefined && strongMatch(trimmed, validators.etag);
  }
  const date = parseHttpDate(trimmed);
  return !Number.isNaN(date) && date === validators.lastModified;
}

// --- Invalidation (§4.4) -------------------------------------------------------------------------

/** Methods that are not safe (RFC 9110 §9.2.1): a success invalidates what they target. */
export function isUnsafe(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && method !== 'TRACE';
}

/** §4.4: only non-error responses (2xx, 3xx) invalidate. */
export function invalidates(status: number): boolean {
  return status >= 200 && status < 400;
}

/**
 * The same-origin targets of Location and Content-Location, as path-and-query (§4.4: a cache
 * must not invalidate other origins' URIs, against denial-of-service). `origin` is the request's
 * scheme://host.
 */
export function relatedTargets(headers: HeaderMap, origin: string): string[] {
  const out: string[] = [];
  for (const name of ['location', 'content-location']) {
    const value = first(headers[name]);
    if (value === undefined) continue;
    try {
      const url = new URL(value, `${origin}/`);
      if (url.origin === origin) out.push(url.pathname + url.search);
    } catch {
      // Not a URL: nothing to invalidate.
    }
  }
  return out;
}

// --- helpers -------------------------------------------------------------------------------------

/** An HTTP-date (RFC 9110 §5.6.7), ms epoch; NaN when absent or not a date. */
export function parseHttpDate(value: string | undefined): number {
  if (value === undefined) return NaN;
  return Date.parse(value);
}

export function first(value: HeaderValue): string | undefined {
  return value === undefined || typeof value === 'string' ? value : value[0];
}
