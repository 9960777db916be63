/**
 * A stored response: its serialisable description (EntryMeta, what a store persists) and the
 * prepared form the hot path serves from (CachedEntry: headers flattened, freshness and
 * validators computed once at store time).
 */
import type { Readable } from 'node:stream';
import { SerializedHead } from '../listeners/serialized-head.ts';
import { parseHttpDate, type StoredFacts, type Validators } from './policy.ts';

/** What a store persists about one response (JSON-safe); its StoredFacts drive freshness. */
export interface EntryMeta extends StoredFacts {
  /** The primary cache key (host, path, query). */
  readonly key: string;
  /** The variant key: the normalised request values of `vary` ('' when none). */
  readonly variant: string;
  /** Lower-case request header names the variant was chosen by (Vary plus the configured key headers), sorted. */
  readonly vary: readonly string[];
  readonly status: number;
  /** The response head as served, flat [name, value, ...] with lower-case names, without Age and Cache-Status. */
  readonly headers: readonly string[];
  /** An upstream cache's Cache-Status, kept after ours (RFC 9211 §2); '' when none. */
  readonly upstreamStatus: string;
  /** When the request was sent upstream, ms epoch. */
  readonly requestTime: number;
  /** Surrogate keys / cache tags, for purging. */
  readonly tags: readonly string[];
  /** Body bytes; -1 until the body is complete. */
  readonly size: number;
}

/** Where a stored body is read from. */
export interface StoredBody {
  /** The whole body in memory, written without copying; null when on disk. Made on each read for a text body: read `text` first. */
  readonly chunks: readonly Buffer[] | null;
  /**
   * A small body in memory as a latin1 string (one char per byte): node:http then writes the head
   * and the body in one write() instead of a writev of two, ~10% of a hit. Null otherwise.
   */
  readonly text: string | null;
  /** A stream of bytes start..end (inclusive). Rejects when the body is gone (evicted meanwhile). */
  open(start: number, end: number): Promise<Readable>;
}

/** A stored response, ready to be served. Immutable: a revalidation replaces it. */
export interface CachedEntry extends StoredFacts {
  readonly meta: EntryMeta;
  readonly key: string;
  readonly variant: string;
  readonly vary: readonly string[];
  readonly status: number;
  readonly size: number;
  /** Headers of a full answer, flat, Content-Length set to the body size. */
  readonly head: readonly string[];
  /**
   * The same without Content-Length, serialised once for writeSerializedHead (the hot path);
   * null when node:http does not allow that or a field is not valid on the wire.
   */
  readonly serialized: SerializedHead | null;
  /** The head has the backend's own Strict-Transport-Security: kept, and the listener's `hsts` not added (core/response-fields.ts). */
  readonly hasHsts: boolean;
  readonly validators: Validators;
  /** ms epoch until which the entry is fresh (never, when noCache). */
  readonly freshUntil: number;
  readonly tags: readonly string[];
  readonly body: StoredBody;
}

/** Statuses whose answers have no content (RFC 9110 §15.3.5, §15.4.5). */
export function bodiless(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** Builds the served form of `meta` (whose size is known) over `body`. */
export function prepareEntry(meta: EntryMeta, body: StoredBody): CachedEntry {
  const head: string[] = [];
  let etag: string | undefined;
  let lastModified: string | undefined;
  let date: string | undefined;
  let hasHsts = false;
  for (let i = 0; i < meta.headers.length; i += 2) {
    const name = meta.headers[i] as string;
    const value = meta.headers[i + 1] as string;
    if (name === 'content-length' || name === 'transfer-encoding') continue;
    if (name === 'etag') etag ??= value;
    else if (name === 'last-modified') lastModified ??= value;
    else if (name === 'date') date ??= value;
    else if (name === 'strict-transport-security') hasHsts = true;
    head.push(name, value);
  }
  const serialized = SerializedHead.of(head);
  if (!bodiless(meta.status)) head.push('content-length', String(meta.size));
  const freshUntil = meta.noCache ? 0 : meta.responseTime + (meta.lifetime - meta.initialAge) * 1000;
  return {
    meta,
    key: meta.key,
    variant: meta.variant,
    vary: meta.vary,
    status: meta.status,
    size: meta.size,
    head,
    serialized,
    hasHsts,
    validators: { etag, lastModified: parseHttpDate(lastModified), date: parseHttpDate(date) },
    freshUntil,
    tags: meta.tags,
    body,
    responseTime: meta.responseTime,
    initialAge: meta.initialAge,
    lifetime: meta.lifetime,
    noCache: meta.noCache,
    noStale: meta.noStale,
    staleWhileRevalidate: meta.staleWhileRevalidate,
    staleIfError: meta.staleIfError,
  };
}

/** The value of a header in a flat list, first occurrence. */
export function flatGet(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

/** A flat header list as a record (values of repeated names joined in arrays). */
export function flatToRecord(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    const existing = out[name];
    // Arrays here are made here: extended in place.
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

/** Rough bytes an entry's description takes in memory (for the store's size accounting). */
export function metaBytes(meta: EntryMeta): number {
  let bytes = 256 + meta.key.length + meta.variant.length;
  for (const h of meta.headers) bytes += h.length + 16;
  for (const t of meta.tags) bytes += t.length + 16;
  return bytes;
}

/** True when a value read back (from disk) has the shape of an EntryMeta. */
export function isEntryMeta(value: unknown): value is EntryMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m['key'] === 'string' &&
    typeof m['variant'] === 'string' &&
    Array.isArray(m['vary']) &&
    Number.isInteger(m['status']) &&
    (m['status'] as number) >= 100 &&
    (m['status'] as number) <= 599 &&
    Array.isArray(m['headers']) &&
    (m['headers'] as unknown[]).length % 2 === 0 &&
    (m['headers'] as unknown[]).every((h) => typeof h === 'string') &&
    typeof m['upstreamStatus'] === 'string' &&
    typeof m['requestTime'] === 'number' &&
    typeof m['responseTime'] === 'number' &&
    typeof m['initialAge'] === 'number' &&
    typeof m['lifetime'] === 'number' &&
    typeof m['noCache'] === 'boolean' &&
    typeof m['noStale'] === 'boolean' &&
    typeof m['staleWhileRevalidate'] === 'number' &&
    typeof m['staleIfError'] === 'number' &&
    Array.isArray(m['tags']) &&
    typeof m['size'] === 'number'
  );
}
