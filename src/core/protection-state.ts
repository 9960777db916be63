/**
 * Protection state that outlives a reload, kept by stable key: rate-limit buckets (by route and
 * limit name + client), bans and violation counts (by client), open connections per client, the IP
 * list files being watched (by path, reference-counted across snapshots), and the counters the
 * admin API shows.
 */
import { resolve } from 'node:path';
import { IpListFile, type ListFileLog } from '../middleware/ip-filter/ip-list-file.ts';
import { RedisListSharing } from '../middleware/ip-filter/redis-lists.ts';
import { BanList } from '../middleware/rate-limit/bans.ts';
import { MemoryRateLimitStore } from '../middleware/rate-limit/memory-store.ts';
import { shareBansThroughRedis } from '../middleware/rate-limit/redis-bans.ts';
import { RedisConnectionCounts } from '../middleware/rate-limit/redis-connections.ts';
import { RedisRateLimitStore } from '../middleware/rate-limit/redis-store.ts';
import type { RateLimitStore } from '../middleware/rate-limit/store.ts';
import type { RedisState } from './redis-state.ts';

/** A rate-limit store the state can size and report on: in memory, or shared by worker threads. */
export interface LocalRateLimitStore extends RateLimitStore {
  readonly size: number;
  readonly evicted: number;
  maxEntries: number;
}

/** Open connections per client key. */
export interface ConnectionCounts {
  readonly size: number;
  /**
   * One more for `key`; false (and nothing counted) when it already has `max`. Counts shared with
   * other instances answer asynchronously (a promise, settled within the Redis timeout).
   */
  open(key: string, max: number): boolean | Promise<boolean>;
  close(key: string): void;
}

/** What several worker threads share instead of keeping their own (workers/shared.ts). */
export interface SharedProtection {
  readonly store: LocalRateLimitStore;
  readonly connections: ConnectionCounts;
  /** Called with the new BanList: ban changes are published to the other threads and theirs applied. */
  attachBans(bans: BanList): void;
}

/** What was refused, and why; shown by `GET /status` on the admin listener. */
export interface ProtectionCounters {
  /** Connections closed at accept by the access rules. */
  denied_connections: number;
  /** Requests answered 403 by the access rules (global or per route). */
  denied_requests: number;
  /** Connections refused past `max_connections_per_client`. */
  client_connection_limit: number;
  /** Connections dropped past a listener's `max_connections`. */
  listener_connection_limit: number;
  /** Requests answered 429 by a rate limit. */
  rate_limited: number;
  /** Requests held back by a rate limit's `delay_after`. */
  rate_delayed: number;
  /** Connections closed at accept, and requests refused, because the client is banned. */
  banned_connections: number;
  banned_requests: number;
  /** Requests refused as malformed or ambiguous (400, 414, 431) by Gatehouse's own checks. */
  rejected_requests: number;
  /** Request bodies cut for arriving slower than `limits.body_min_rate`. */
  slow_bodies: number;
  /** PROXY protocol headers that were missing, malformed, late or from an untrusted peer. */
  proxy_protocol_errors: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;

export class ProtectionState {
  readonly store: LocalRateLimitStore;
  readonly bans: BanList;
  readonly counters: ProtectionCounters = {
    denied_connections: 0,
    denied_requests: 0,
    client_connection_limit: 0,
    listener_connection_limit: 0,
    rate_limited: 0,
    rate_delayed: 0,
    banned_connections: 0,
    banned_requests: 0,
    rejected_requests: 0,
    slow_bodies: 0,
    proxy_protocol_errors: 0,
  };
  /** Open connections per client key (only counted while `max_connections_per_client` is set). */
  readonly connections: ConnectionCounts;
  /**
   * Bumped whenever an access rule may have changed (a new snapshot, a list file re-read): a
   * connection admitted under an older generation is checked again on its next request.
   */
  accessGeneration = 0;
  /** Where list-file reloads are reported; Gatehouse points this at its logger. */
  log: ListFileLog = () => {};
  readonly #files = new Map<string, { file: IpListFile; users: number }>();
  /** List files told to and by other instances (state.redis); null alone. */
  readonly #lists: RedisListSharing | null;

  /** Shared with other instances (state.redis); null: this process's state is all there is. */
  readonly redis: RedisState | null;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES, shared: SharedProtection | null = null, redis: RedisState | null = null) {
    const local = shared?.store ?? new MemoryRateLimitStore({ maxEntries });
    this.redis = redis;
    // With Redis, the local store is the fallback of the shared one (fail open while Redis is away).
    this.store = redis === null ? local : new RedisRateLimitStore(redis, local, { ...redis.config.rate_limits, failClosed: redis.config.on_failure === 'closed', maxEntries });
    const localConnections = shared?.connections ?? new MapConnectionCounts();
    this.connections = redis === null ? localConnections : new RedisConnectionCounts(redis, localConnections);
    this.bans = new BanList(maxEntries);
    shared?.attachBans(this.bans);
    if (redis !== null) shareBansThroughRedis(this.bans, redis);
    this.#lists = redis === null ? null : new RedisListSharing(redis);
  }

  /** Applies `protection.max_clients` of a new configuration. */
  setMaxEntries(maxEntries: number): void {
    this.store.maxEntries = maxEntries;
    this.bans.maxEntries = maxEntries;
  }

  /** The list file at `path`, read now (throws when unusable) or shared with earlier snapshots. */
  acquireFile(path: string): IpListFile {
    const existing = this.#files.get(resolve(path));
    if (existing !== undefined) {
      existing.users++;
      return existing.file;
    }
    const file = new IpListFile(path, () => this.accessGeneration++, (level, fields, message) => this.log(level, fields, message));
    this.#files.set(file.path, { file, users: 1 });
    this.#lists?.attach(file);
    return file;
  }

  releaseFile(resolvedPath: string): void {
    const entry = this.#files.get(resolvedPath);
    if (entry === undefined) return;
    if (--entry.users <= 0) {
      this.#files.delete(resolvedPath);
      this.#lists?.detach(entry.file);
      entry.file.close();
    }
  }

  /** For `GET /status`. */
  status(): Record<string, unknown> {
    return {
      ...this.counters,
      bans_active: this.bans.count(),
      bans_issued: this.bans.issued,
      rate_limit_keys: this.store.size,
      rate_limit_keys_evicted: this.store.evicted,
      ...(this.store instanceof RedisRateLimitStore ? { rate_limit_redis: { ...this.store.counters } } : {}),
      clients_counted: this.connections.size,
      list_files: [...this.#files.values()].map(({ file }) => ({
        path: file.path,
        entries: file.current.entries,
        reloads: file.version,
        errors: file.errors,
      })),
    };
  }

  close(): void {
    this.store.close();
    if (this.connections instanceof RedisConnectionCounts) this.connections.stop();
    for (const { file } of this.#files.values()) file.close();
    this.#files.clear();
  }
}

/** Open connections per client key in this thread's memory. */
class MapConnectionCounts implements ConnectionCounts {
  readonly #counts = new Map<string, number>();

  get size(): number {
    return this.#counts.size;
  }

  open(key: string, max: number): boolean {
    const open = this.#counts.get(key) ?? 0;
    if (open >= max) return false;
    this.#counts.set(key, open + 1);
    return true;
  }

  close(key: string): void {
    const open = this.#counts.get(key) ?? 0;
    if (open <= 1) this.#counts.delete(key);
    else this.#counts.set(key, open - 1);
  }
}
