import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pool } from 'undici';
import { createPool, poolKey, type PoolOptions } from '../transport/pool.ts';
import { Traffic } from './metrics/traffic.ts';
import type { HealthSharing } from '../upstream/health/sharing.ts';
import type { SharedProtection } from './protection-state.ts';
import type { RedisState } from './redis-state.ts';

interface Entry {
  readonly pool: Pool;
  users: number;
}

/** State kept by the registry for the snapshots that use it; closed when the last one lets go. */
export interface SharedState {
  /** Stops its timers and gives up what it holds; called once. */
  close(): void;
  /** This process is being replaced (an upgrade): let go of what the new process takes over (a disk cache's directory). */
  handOver?(): void;
}

interface SharedEntry {
  readonly value: SharedState;
  users: number;
}

/**
 * State that outlives a reload, kept by stable key: connection pools to servers, and the
 * health, load and retry-budget state of upstreams and their servers.
 * Each snapshot acquires what it uses and releases it when it is retired; a pool nobody
 * uses any more is closed gracefully (its in-flight requests finish first), other state is closed
 * (its timers stop).
 */
export class Registry {
  readonly #pools = new Map<string, Entry>();
  readonly #shared = new Map<string, SharedEntry>();
  /** Where state changes (a server going down, ejected, drained) are logged; none when null. */
  logger: Logger | null = null;
  /** Set in a worker thread: the protection state shared with the other workers; null alone. */
  sharedProtection: SharedProtection | null = null;
  /** The Redis several instances share (`state.redis`, read at start); null when not configured. */
  redis: RedisState | null = null;
  /** Set in a worker thread: server health told to and by the other workers; null alone. */
  healthSharing: HealthSharing | null = null;
  /** Requests that matched no route, for /metrics (as the routes' Traffic, it lives as long as the process). */
  readonly unrouted = new Traffic();
  /** The pid of the process this one replaces (an upgrade): state it holds (a disk cache) is waited for, not refused; null otherwise. */
  predecessor: number | null = null;
  /** Signs sticky-session cookies when the configuration gives no secret; lives as long as the process. */
  readonly secret: Buffer = randomBytes(32);

  /** The state kept under `key`, made by `create` the first time; each call must be paired with a release. */
  acquireShared<T extends SharedState>(key: string, create: () => T): T {
    let entry = this.#shared.get(key);
    if (entry === undefined) {
      entry = { value: create(), users: 0 };
      this.#shared.set(key, entry);
    }
    entry.users++;
    return entry.value as T;
  }

  releaseShared(key: string): void {
    const entry = this.#shared.get(key);
    if (entry === undefined) return;
    entry.users--;
    if (entry.users <= 0) {
      this.#shared.delete(key);
      entry.value.close();
    }
  }

  /** This process is being replaced: each shared state lets go of what the new process takes over. */
  handOver(): void {
    for (const entry of this.#shared.values()) entry.value.handOver?.();
  }

  get sharedCount(): number {
    return this.#shared.size;
  }

  acquirePool(origin: string, options: PoolOptions): { key: string; pool: Pool } {
    const key = poolKey(origin, options);
    let entry = this.#pools.get(key);
    if (entry === undefined) {
      entry = { pool: createPool(origin, options), users: 0 };
      this.#pools.set(key, entry);
    }
    entry.users++;
    return { key, pool: entry.pool };
  }

  releasePool(key: string): void {
    const entry = this.#pools.get(key);
    if (entry === undefined) return;
    entry.users--;
    if (entry.users <= 0) {
      this.#pools.delete(key);
      void entry.pool.close().catch(() => entry.pool.destroy());
    }
  }

  get poolCount(): number {
    return this.#pools.size;
  }

  /** Closes every shared state (health checks stop) and every pool: in-flight requests finish, or are cut after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    for (const entry of this.#shared.values()) entry.value.close();
    this.#shared.clear();
    const pools = [...this.#pools.values()].map((e) => e.pool);
    this.#pools.clear();
    await Promise.all(
      pools.map(async (pool) => {
        const timer = setTimeout(() => void pool.destroy(), graceMs);
        try {
          await pool.close();
        } catch {
          await pool.destroy();
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}
