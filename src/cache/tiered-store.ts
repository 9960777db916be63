/**
 * A cache store for several instances (`type: redis`): a per-instance memory store (L1, the hot
 * path: a hit there is as fast as the memory store's) in front of Redis (L2, redis-tier.ts),
 * which every instance reads and writes. An L1 miss looks in L2; what it finds is copied into L1.
 * A response stored through one instance goes to both tiers, and the other instances are told to
 * drop their L1 copy of that key (theirs may be older); purges, tag invalidations and RFC 9111
 * invalidations do the same, so they reach every instance. Bodies stream in and are kept only up
 * to `max_object_size` (the cap per object, in both tiers); past it nothing is kept, and nothing
 * more is buffered. While Redis is unavailable the store is its L1 alone; when Redis is back, L1
 * is emptied (it may have missed purges meanwhile) and fills again from Redis.
 */
import type { RedisState } from '../core/redis-state.ts';
import { CollectingWriter, type CommitBody } from './collecting-writer.ts';
import type { CachedEntry, EntryMeta } from './entry.ts';
import { MemoryStore } from './memory-store.ts';
import { RedisTier, type TierEntry } from './redis-tier.ts';
import type { CacheStore, EntryWriter, StoreLimits, StoreStats } from './store.ts';

/** What one instance tells the others about a store's keys. */
type Invalidation =
  | { readonly op: 'key'; readonly key: string }
  | { readonly op: 'prefix'; readonly prefix: string }
  | { readonly op: 'tag'; readonly tag: string };

/** Second-tier counters, shown with the store's statistics. */
export interface TierCounters {
  /** L1 misses answered from Redis. */
  l2_hits: number;
  /** L1 misses Redis had nothing for (or could not answer). */
  l2_misses: number;
  /** Responses written to Redis. */
  l2_stored: number;
  /** L1 copies dropped because another instance stored or purged the key. */
  remote_invalidations: number;
}

export class TieredStore implements CacheStore {
  readonly kind = 'redis';
  readonly #l1: MemoryStore;
  readonly #l2: RedisTier;
  readonly #redis: RedisState;
  readonly #channel: string;
  #limits: StoreLimits;
  readonly #stopRecovery: () => void;
  readonly counters: TierCounters = { l2_hits: 0, l2_misses: 0, l2_stored: 0, remote_invalidations: 0 };

  constructor(redis: RedisState, name: string, limits: StoreLimits) {
    this.#redis = redis;
    this.#limits = limits;
    this.#l1 = new MemoryStore(limits);
    this.#l2 = new RedisTier(redis, name);
    this.#channel = `cache:${name}`;
    redis.subscribe(this.#channel, (payload) => this.#invalidated(payload));
    // Purges and newer responses told while this instance was cut off were missed: its memory
    // tier starts again from Redis.
    this.#stopRecovery = redis.onRecover(() => void this.#l1.deletePrefix(''));
  }

  get(key: string): readonly CachedEntry[] | undefined | Promise<readonly CachedEntry[] | undefined> {
    const local = this.#l1.get(key);
    if (local !== undefined || !this.#l2.available) return local;
    return this.#fromL2(key);
  }

  async #fromL2(key: string): Promise<readonly CachedEntry[] | undefined> {
    const found = await this.#l2.get(key);
    if (found === undefined) {
      this.counters.l2_misses++;
      return undefined;
    }
    this.counters.l2_hits++;
    // Another request may have filled L1 meanwhile: its entries are as good.
    const local = this.#l1.get(key);
    if (local !== undefined) return local;
    // Oldest first into L1, so that the most recent ends first, as L2 listed them.
    const entries = new Array<CachedEntry>(found.length);
    for (let i = found.length - 1; i >= 0; i--) {
      const { meta, body } = found[i] as TierEntry;
      entries[i] = this.#l1.put(meta, body.length === 0 ? [] : [body], body.length);
    }
    return entries;
  }

  open(meta: EntryMeta, expectedSize: number): EntryWriter | null {
    if (expectedSize > this.#limits.maxObjectSize) return null;
    return new CollectingWriter(meta, this.#limits.maxObjectSize, this.#commit);
  }

  /** Keeps a complete body in both tiers; bound once (no closure per write). */
  readonly #commit: CommitBody = (meta, chunks, size) => {
    const entry = this.#l1.put(meta, chunks, size);
    if (this.#l2.available) {
      this.#l2.put(entry.meta, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
      this.counters.l2_stored++;
      this.#tell({ op: 'key', key: meta.key });
    }
    return entry;
  };

  async update(entry: CachedEntry, meta: EntryMeta): Promise<CachedEntry | null> {
    // A newer response of the same variant in L1 means this description is out of date: Redis keeps its own.
    const newer = this.#l1.get(entry.key)?.some((e) => e.variant === entry.variant && e !== entry) ?? false;
    const updated = await this.#l1.update(entry, meta);
    if (this.#l2.available && !newer) {
      this.#l2.update({ ...meta, size: entry.size });
      this.#tell({ op: 'key', key: meta.key });
    }
    return updated;
  }

  async delete(key: string): Promise<number> {
    const local = await this.#l1.delete(key);
    if (!this.#l2.available) return local;
    this.#tell({ op: 'key', key });
    return Math.max(local, await this.#l2.delete([key]));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const local = await this.#l1.deletePrefix(prefix);
    if (!this.#l2.available) return local;
    this.#tell({ op: 'prefix', prefix });
    return Math.max(local, await this.#l2.deletePrefix(prefix));
  }

  async deleteTag(tag: string): Promise<number> {
    const local = await this.#l1.deleteTag(tag);
    if (!this.#l2.available) return local;
    this.#tell({ op: 'tag', tag });
    return Math.max(local, await this.#l2.deleteTag(tag));
  }

  #tell(change: Invalidation): void {
    this.#redis.publish(this.#channel, change);
  }

  /** Another instance stored or purged: the L1 copies concerned go (L2 has what is current). */
  #invalidated(payload: unknown): void {
    if (typeof payload !== 'object' || payload === null) return;
    const change = payload as Partial<Record<'op' | 'key' | 'prefix' | 'tag', unknown>>;
    const count = (n: number): void => void (this.counters.remote_invalidations += n);
    if (change.op === 'key' && typeof change.key === 'string') void this.#l1.delete(change.key).then(count);
    else if (change.op === 'prefix' && typeof change.prefix === 'string') void this.#l1.deletePrefix(change.prefix).then(count);
    else if (change.op === 'tag' && typeof change.tag === 'string') void this.#l1.deleteTag(change.tag).then(count);
  }

  configure(limits: StoreLimits): void {
    this.#limits = limits;
    this.#l1.configure(limits);
  }

  stats(): StoreStats {
    return { ...this.#l1.stats(), kind: this.kind, tiers: { ...this.counters, l2_available: this.#l2.available } };
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.#stopRecovery();
    this.#redis.unsubscribe(this.#channel);
    this.#l1.close();
  }
}
