/** Building and freshening entry descriptions from response heads (RFC 9111 §3, §3.2, §4.3.4). */
import type { ResponseHeaders } from '../middleware/pipeline.ts';
import { flatToRecord, type CachedEntry, type EntryMeta } from './entry.ts';
import {
  first,
  initialAge,
  parseHttpDate,
  storagePlan,
  weakMatch,
  type PolicyOptions,
  type StoragePlan,
  type Validators,
} from './policy.ts';
import { parseCacheControl } from './cache-control.ts';

/** Response headers that carry tags for purging; taken out of responses (as Fastly and Cloudflare do). */
export const TAG_HEADERS = ['surrogate-key', 'cache-tag'] as const;

/**
 * Removes the tag headers from `headers` and returns their tags: Surrogate-Key is
 * space-separated, Cache-Tag comma-separated.
 */
export function extractTags(headers: ResponseHeaders): string[] {
  const tags = new Set<string>();
  for (const name of TAG_HEADERS) {
    const value = headers[name];
    if (value === undefined) continue;
    delete headers[name];
    const separator = name === 'surrogate-key' ? /\s+/ : /\s*,\s*/;
    for (const v of Array.isArray(value) ? value : [value]) {
      for (const tag of v.trim().split(separator)) if (tag !== '') tags.add(tag);
    }
  }
  return [...tags];
}

export interface MetaInput {
  readonly key: string;
  readonly variant: string;
  readonly vary: readonly string[];
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly plan: StoragePlan;
  readonly requestTime: number;
  readonly responseTime: number;
  readonly tags: readonly string[];
}

/** Header fields never stored: computed per answer (Age, Cache-Status) or describing a transfer. */
const NOT_STORED: ReadonlySet<string> = new Set(['age', 'cache-status', 'content-length', 'transfer-encoding', 'trailer']);

/** The description of a response about to be stored (its size is set when the body is complete). */
export function buildMeta(input: MetaInput): EntryMeta {
  const omit = new Set(input.plan.omit);
  const flat: string[] = [];
  for (const name in input.headers) {
    const value = input.headers[name];
    if (value === undefined || NOT_STORED.has(name) || omit.has(name)) continue;
    if (Array.isArray(value)) for (const v of value) flat.push(name, v);
    else flat.push(name, value);
  }
  // RFC 9110 §6.6.1: a cache adds the Date a response lacked.
  if (input.headers['date'] === undefined) flat.push('date', new Date(input.responseTime).toUTCString());
  const upstreamStatus = input.headers['cache-status'];
  return {
    key: input.key,
    variant: input.variant,
    vary: input.vary,
    status: input.status,
    headers: flat,
    upstreamStatus: upstreamStatus === undefined ? '' : Array.isArray(upstreamStatus) ? upstreamStatus.join(', ') : upstreamStatus,
    requestTime: input.requestTime,
    responseTime: input.responseTime,
    initialAge: initialAge(input.headers, input.requestTime, input.responseTime),
    lifetime: input.plan.lifetime,
    noCache: input.plan.noCache,
    noStale: input.plan.noStale,
    staleWhileRevalidate: input.plan.staleWhileRevalidate,
    staleIfError: input.plan.staleIfError,
    tags: input.tags,
    size: -1,
  };
}

/**
 * Fields a 304 does not update (RFC 9111 §3.2 lets a cache exclude some): framing, the encoding
 * and Vary (the variant's identity is fixed when stored), and the ETag, which may carry a weak
 * prefix added when the stored body was compressed.
 */
const NOT_UPDATED: ReadonlySet<string> = new Set([
  'content-length',
  'content-encoding',
  'content-range',
  'transfer-encoding',
  'trailer',
  'vary',
  'etag',
  'age',
  'cache-status',
  'surrogate-key',
  'cache-tag',
]);

export type Freshened = { readonly meta: EntryMeta } | { readonly meta: null; readonly reason: string };

/**
 * The stored description updated by a 304 (§3.2, §4.3.4): its fields replace the stored ones,
 * freshness starts again from the 304's time. `meta` is null when the 304 cannot update the
 * entry (it names another representation, or the updated response may not be stored any more).
 */
export function freshenMeta(
  entry: CachedEntry,
  headers: ResponseHeaders,
  options: PolicyOptions,
  requestTime: number,
  responseTime: number,
  authorization: boolean,
): Freshened {
  const etag = first(headers['etag']);
  if (etag !== undefined && entry.validators.etag !== undefined && !weakMatch(etag, entry.validators.etag)) {
    return { meta: null, reason: 'etag-mismatch' };
  }
  const merged = flatToRecord(entry.meta.headers);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || NOT_UPDATED.has(name)) continue;
    merged[name] = value;
  }
  const plan = storagePlan({ method: 'GET', directives: parseCacheControl(undefined), authorization }, entry.status, merged, options, responseTime);
  if (!plan.storable) return { meta: null, reason: plan.reason };
  const tags = extractTags({ ...headers });
  const meta = buildMeta({
    key: entry.key,
    variant: entry.variant,
    vary: entry.vary,
    status: entry.status,
    headers: merged,
    plan,
    requestTime,
    responseTime,
    tags: tags.length > 0 ? tags : entry.tags,
  });
  // The age is the 304's own (it is the new response), not the stored one's.
  return { meta: { ...meta, initialAge: initialAge(headers, requestTime, responseTime), upstreamStatus: entry.meta.upstreamStatus, size: entry.size } };
}

/** The validators of a response head. */
export function validatorsOf(headers: ResponseHeaders): Validators {
  return {
    etag: first(headers['etag']),
    lastModified: parseHttpDate(first(headers['last-modified'])),
    date: parseHttpDate(first(headers['date'])),
  };
}
