/**
 * The cache store interface: where stored responses live. A store keeps, per primary key, the
 * variants of one resource (most recent first), streams bodies in and out, and forgets entries by
 * key, key prefix or tag. Implementations: memory-store.ts (LRU bounded by bytes, the default) and
 * disk-store.ts (survives restarts); a store shared by several instances can implement the same
 * interface (test/contract/cache-store.test.ts is the contract).
 */
import type { Writable } from 'node:stream';
import type { CachedEntry, EntryMeta } from './entry.ts';

/** Receives one response body; the entry becomes visible when the stream finishes. */
export interface EntryWriter extends Writable {
  /**
   * The stored entry once the body is complete and stored; null when it was not stored (the body
   * went past the store's object limit, the stream was destroyed, or the store failed).
   */
  readonly stored: Promise<CachedEntry | null>;
}

export interface StoreLimits {
  /** Bytes the store may hold (bodies and descriptions). */
  readonly maxSize: number;
  /** The largest body stored. */
  readonly maxObjectSize: number;
}

export interface StoreStats {
  readonly kind: string;
  /** Stored responses (variants included). */
  readonly entries: number;
  readonly bytes: number;
  readonly maxSize: number;
  readonly evictions: number;
  /** A tiered store's second-tier counters (type redis). */
  readonly tiers?: Readonly<Record<string, number | boolean>>;
}

export interface CacheStore {
  /** "memory", "disk" or "redis" (memory in front of Redis). */
  readonly kind: string;
  /**
   * The variants stored under `key`, most recent first; undefined when none. A store that holds
   * its index in memory answers synchronously (the hot path: no promise per hit).
   */
  get(key: string): readonly CachedEntry[] | undefined | Promise<readonly CachedEntry[] | undefined>;
  /**
   * Opens a writer for the body of the response `meta` describes (`meta.size` is ignored). It
   * replaces the variant with the same key and variant key when it finishes. `expectedSize` is
   * the declared length, or -1: past the object limit, null is returned at once.
   */
  open(meta: EntryMeta, expectedSize: number): EntryWriter | null;
  /**
   * Replaces the description of a stored entry (after a 304 revalidation), keeping its body.
   * Resolves with the new entry, or null when the entry is no longer stored.
   */
  update(entry: CachedEntry, meta: EntryMeta): Promise<CachedEntry | null>;
  /** Removes every variant under `key`; resolves with how many entries went. */
  delete(key: string): Promise<number>;
  /** Removes every entry whose key starts with `prefix`. */
  deletePrefix(prefix: string): Promise<number>;
  /** Removes every entry tagged `tag` (Surrogate-Key / Cache-Tag). */
  deleteTag(tag: string): Promise<number>;
  /** Applies new limits (a reload), evicting what no longer fits. */
  configure(limits: StoreLimits): void;
  stats(): StoreStats;
  /** Resolves once the store can answer look-ups (a disk store reading its index). */
  ready(): Promise<void>;
  /** Releases what the store holds (in-flight writers are discarded). */
  close(): void;
}
