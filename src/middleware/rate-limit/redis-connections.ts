/**
 * Open connections per client across instances (`max_connections_per_client` with `state.redis`):
 * one Redis hash per client, a field per instance (and worker thread) holding its count. Admitting
 * a connection is one atomic Lua call that sums the live instances' counts and adds one when under
 * the limit, so the limit holds in total however connections spread. A new connection then waits
 * for that call (bounded by the state's timeout); its close subtracts without waiting.
 *
 * Instances that die cannot subtract: each says it is alive (a heartbeat in one hash) every few
 * seconds, and counts of instances not heard from for STALE_MS are dropped by the next call that
 * sees them. All these keys carry one hash tag, so that a Cluster keeps them in one slot (the
 * script reads two keys). While Redis is unavailable, or a call fails, `local` decides (the
 * instance's own count: fail open); when Redis is back, this instance's counts are written again.
 */
import { threadId } from 'node:worker_threads';
import type { ConnectionCounts } from '../../core/protection-state.ts';
import type { RedisState } from '../../core/redis-state.ts';

/** A count whose instance has not said it is alive for this long is dropped. */
const STALE_MS = 30_000;
const HEARTBEAT_MS = 5_000;

const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local owner = fields[i]
  local n = tonumber(fields[i + 1])
  if owner ~= ARGV[1] and now - tonumber(redis.call('HGET', KEYS[2], owner) or '0') > ${STALE_MS} then
    redis.call('HDEL', KEYS[1], owner)
  else
    total = total + n
  end
end
-- Counting says this instance is alive too: its count is never taken for a dead one's.
redis.call('HSET', KEYS[2], ARGV[1], now)
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
`;

const RELEASE = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`;

const HEARTBEAT = `
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 1
`;

interface ConnectionCommands {
  gatehouseConnAcquire(key: string, alive: string, owner: string, max: number): Promise<number>;
  gatehouseConnRelease(key: string, owner: string): Promise<number>;
  gatehouseConnHeartbeat(alive: string, owner: string): Promise<number>;
}

export class RedisConnectionCounts implements ConnectionCounts {
  readonly #redis: RedisState;
  readonly #local: ConnectionCounts;
  /** This instance's (and thread's) field in every client's hash. */
  readonly #owner: string;
  readonly #alive: string;
  /** This thread's open connections per key, counted in Redis or not: written again after an outage. */
  readonly #mine = new Map<string, number>();
  /** Keys whose count in Redis may not be this thread's (opened or closed while Redis was away, or a call failed). */
  #dirty = new Set<string>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(redis: RedisState, local: ConnectionCounts) {
    this.#redis = redis;
    this.#local = local;
    this.#owner = `${redis.instance}#${threadId}`;
    this.#alive = `${redis.prefix}{conn}:alive`;
    const client = redis.client;
    client.defineCommand('gatehouseConnAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    client.defineCommand('gatehouseConnRelease', { numberOfKeys: 1, lua: RELEASE });
    client.defineCommand('gatehouseConnHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#beat();
    redis.onRecover(() => {
      this.#beat();
      this.#rewrite();
    });
  }

  get size(): number {
    return this.#mine.size;
  }

  /** One more for `key` if all instances together hold fewer than `max`; without Redis, this instance's count decides. */
  open(key: string, max: number): boolean | Promise<boolean> {
    if (!this.#redis.available) return this.#openLocally(key, max);
    return this.#acquire(key, max);
  }

  async #acquire(key: string, max: number): Promise<boolean> {
    let admitted: number;
    try {
      const commands = this.#redis.client as unknown as ConnectionCommands;
      admitted = await commands.gatehouseConnAcquire(this.#hashKey(key), this.#alive, this.#owner, max);
    } catch (error: unknown) {
      this.#redis.failed(error);
      return this.#openLocally(key, max);
    }
    if (admitted !== 1) return false;
    this.#local.open(key, Number.POSITIVE_INFINITY);
    this.#count(key, 1);
    return true;
  }

  /** The local counts decide (this process's, shared by its threads); Redis is told when it is back. */
  #openLocally(key: string, max: number): boolean {
    if (!this.#local.open(key, max)) return false;
    this.#count(key, 1);
    this.#dirty.add(key);
    return true;
  }

  close(key: string): void {
    this.#count(key, -1);
    this.#local.close(key);
    if (!this.#redis.available || this.#dirty.has(key)) {
      this.#dirty.add(key);
      return;
    }
    const commands = this.#redis.client as unknown as ConnectionCommands;
    commands.gatehouseConnRelease(this.#hashKey(key), this.#owner).catch((error: unknown) => {
      this.#dirty.add(key);
      this.#redis.failed(error);
    });
  }

  #count(key: string, delta: number): void {
    const open = (this.#mine.get(key) ?? 0) + delta;
    if (open <= 0) this.#mine.delete(key);
    else this.#mine.set(key, open);
  }

  #beat(): void {
    if (!this.#redis.available) return;
    const commands = this.#redis.client as unknown as ConnectionCommands;
    commands.gatehouseConnHeartbeat(this.#alive, this.#owner).catch(this.#redis.failed);
  }

  /** After an outage: this thread's field in the hash of each client touched meanwhile is set to what it holds. */
  #rewrite(): void {
    const dirty = this.#dirty;
    this.#dirty = new Set();
    const failed = this.#redis.failed;
    for (const key of dirty) {
      const open = this.#mine.get(key) ?? 0;
      if (open > 0) this.#redis.client.hset(this.#hashKey(key), this.#owner, open).catch(failed);
      else this.#redis.client.hdel(this.#hashKey(key), this.#owner).catch(failed);
    }
  }

  #hashKey(key: string): string {
    return `${this.#redis.prefix}{conn}:${key}`;
  }

  /** Stops the heartbeat (the instance stops). */
  stop(): void {
    clearInterval(this.#heartbeat);
  }
}
