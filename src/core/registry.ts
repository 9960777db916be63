import type { Pool } from 'undici';
import { createPool, poolKey, type PoolOptions } from '../transport/pool.ts';

interface Entry {
  readonly pool: Pool;
  users: number;
}

/**
 * State that outlives a reload, kept by stable key: connection pools to servers.
 * Each snapshot acquires the pools it uses and releases them when it is retired; a pool nobody
 * uses any more is closed gracefully (its in-flight requests finish first).
 */
export class Registry {
  readonly #pools = new Map<string, Entry>();

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

  /** Closes every pool: in-flight requests finish, or are cut after `graceMs`. */
  async close(graceMs: number): Promise<void> {
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
