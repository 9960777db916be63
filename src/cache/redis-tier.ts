/**
 * The cache's second tier in Redis, shared by every instance: one hash per primary key holding
 * each variant's description (`m:<variant>`, JSON) and body (`b:<variant>`, bytes), so a look-up
 * is one HGETALL; one set per tag naming the keys tagged with it. Entries expire in Redis when
 * they are of no more use (fresh time plus the stale allowances plus a day for revalidation);
 * Redis's own `maxmemory` with an LRU policy bounds the total (docs/scaling.md#cache). Keys and
 * tag sets are written separately, never in one transaction, so that a Cluster can place them in
 * different slots. Every call is bounded by the state's timeout; a failed call degrades the state
 * and the caller goes on with its first tier.
 */
import type { RedisClient, RedisState } from '../core/redis-state.ts';
import { isEntryMeta, type EntryMeta } from './entry.ts';

/** How long after its last use for revalidation a stale entry is kept (it has validators). */
const REVALIDATION_GRACE_MS = 24 * 3600 * 1000;

/** One variant as read from Redis. */
export interface TierEntry {
  readonly meta: EntryMeta;
  readonly body: Buffer;
}

export class RedisTier {
  readonly #redis: RedisState;
  /** Start of every key of this store: `<prefix>cache:<store>:`. */
  readonly #ns: string;

  constructor(redis: RedisState, store: string) {
    this.#redis = redis;
    this.#ns = `${redis.prefix}cache:${store}:`;
  }

  get available(): boolean {
    return this.#redis.available;
  }

  #entryKey(key: string): string {
    return `${this.#ns}e:${key}`;
  }

  #tagKey(tag: string): string {
    return `${this.#ns}t:${tag}`;
  }

  /** The variants stored under `key`, most recent first; undefined when none, or when Redis failed. */
  async get(key: string): Promise<TierEntry[] | undefined> {
    let fields: Record<string, Buffer>;
    try {
      fields = await this.#redis.client.hgetallBuffer(this.#entryKey(key));
    } catch (error: unknown) {
      this.#redis.failed(error);
      return undefined;
    }
    const out: TierEntry[] = [];
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith('m:')) continue;
      const body = fields[`b:${field.slice(2)}`];
      const meta = parseMeta(value);
      if (meta !== null && body !== undefined && body.length === meta.size && meta.key === key) out.push({ meta, body });
    }
    if (out.length === 0) return undefined;
    return out.sort((a, b) => b.meta.responseTime - a.meta.responseTime);
  }

  /** Stores one variant (fire and forget: a failure only degrades the state). */
  put(meta: EntryMeta, body: Buffer): void {
    const client = this.#redis.client;
    const key = this.#entryKey(meta.key);
    const ttl = ttlOf(meta);
    const failed = this.#redis.failed;
    client.hset(key, `m:${meta.variant}`, JSON.stringify(meta), `b:${meta.variant}`, body).catch(failed);
    client.pexpire(key, ttl).catch(failed);
    for (const tag of meta.tags) {
      const tagKey = this.#tagKey(tag);
      client.sadd(tagKey, meta.key).catch(failed);
      // A tag set lives as long as the longest-lived entry added to it.
      client.pexpire(tagKey, ttl, 'GT').catch(failed);
      client.pexpire(tagKey, ttl, 'NX').catch(failed);
    }
  }

  /** Replaces a variant's description, keeping its body (a 304 revalidation). */
  update(meta: EntryMeta): void {
    const key = this.#entryKey(meta.key);
    const failed = this.#redis.failed;
    this.#redis.client.hset(key, `m:${meta.variant}`, JSON.stringify(meta)).catch(failed);
    this.#redis.client.pexpire(key, ttlOf(meta), 'GT').catch(failed);
  }

  /** Removes every variant under each key; resolves with how many variants went. */
  async delete(keys: readonly string[]): Promise<number> {
    let removed = 0;
    for (const key of keys) {
      try {
        const entryKey = this.#entryKey(key);
        const fields = await this.#redis.client.hlen(entryKey);
        if (fields > 0) removed += (await this.#redis.client.del(entryKey)) * Math.floor(fields / 2);
      } catch (error: unknown) {
        this.#redis.failed(error);
      }
    }
    return removed;
  }

  /** Removes every key starting with `prefix` ('' for all), scanning each primary. */
  async deletePrefix(prefix: string): Promise<number> {
    const keys: string[] = [];
    const start = `${this.#ns}e:`;
    try {
      for (const node of primaries(this.#redis.client)) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', `${escapeGlob(start + prefix)}*`, 'COUNT', 1000);
          cursor = next;
          for (const key of found) keys.push(key.slice(start.length));
        } while (cursor !== '0');
      }
    } catch (error: unknown) {
      this.#redis.failed(error);
    }
    return this.delete(keys);
  }

  /** Removes every key tagged `tag` (all its variants) and the tag's set. */
  async deleteTag(tag: string): Promise<number> {
    let keys: string[];
    try {
      keys = await this.#redis.client.smembers(this.#tagKey(tag));
      await this.#redis.client.del(this.#tagKey(tag));
    } catch (error: unknown) {
      this.#redis.failed(error);
      return 0;
    }
    return this.delete(keys);
  }
}

/** Fresh time, the longest stale allowance, and a day for revalidation when the entry can be revalidated. */
function ttlOf(meta: EntryMeta): number {
  const fresh = meta.noCache ? 0 : Math.max(0, meta.responseTime + (meta.lifetime - meta.initialAge) * 1000 - Date.now());
  const stale = Math.max(meta.staleWhileRevalidate, meta.staleIfError) * 1000;
  const validators = meta.headers.some((name, i) => i % 2 === 0 && (name === 'etag' || name === 'last-modified'));
  return Math.max(1000, Math.ceil(fresh + stale + (validators ? REVALIDATION_GRACE_MS : 0)));
}

function parseMeta(raw: Buffer): EntryMeta | null {
  try {
    const value: unknown = JSON.parse(raw.toString());
    return isEntryMeta(value) ? value : null;
  } catch {
    return null;
  }
}

/** The nodes a SCAN must visit: every primary of a Cluster, or the one server. */
function primaries(client: RedisClient): RedisClient[] {
  return 'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client];
}

/** A literal string in a SCAN MATCH pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
