/**
 * Bans shared by every instance through Redis: each change made here (a ban, a lift, a broken
 * limit) is published on one channel and every other instance applies it, within a message's time.
 * Active bans are also kept in one Redis hash (client → ban, with its absolute end), so that an
 * instance that was disconnected, or has just started, reads them when Redis is back and enforces
 * them; bans it made while Redis was away are published again then. Clocks are wall clocks
 * (epoch ms): instances are expected to keep time with NTP.
 */
import type { RedisState } from '../../core/redis-state.ts';
import type { BanChange, BanList } from './bans.ts';

const CHANNEL = 'bans';

/** Makes `list` publish its changes through Redis (after `local`, the worker threads' channel, if any) and apply those of other instances. */
export function shareBansThroughRedis(list: BanList, redis: RedisState): void {
  const hash = `${redis.prefix}bans`;
  const local = list.publish;
  list.publish = (change) => {
    local?.(change);
    if (!redis.publish(CHANNEL, change)) return;
    if (change.op === 'ban') {
      redis.client
        .hset(hash, change.key, JSON.stringify({ until: change.until, since: change.since, reason: change.reason, level: change.level }))
        .catch(redis.failed);
    } else if (change.op === 'lift') redis.client.hdel(hash, change.key).catch(redis.failed);
    else if (change.op === 'lift_all') redis.client.del(hash).catch(redis.failed);
  };
  redis.subscribe(CHANNEL, (payload) => {
    if (isBanChange(payload)) list.apply(payload);
  });
  redis.onRecover(() => {
    void resync(list, redis, hash);
  });
}

/** Applies the bans stored in Redis (dropping those that ended), then tells Redis of the local ones. */
async function resync(list: BanList, redis: RedisState, hash: string): Promise<void> {
  let stored: Record<string, string>;
  try {
    stored = await redis.client.hgetall(hash);
  } catch (error: unknown) {
    redis.failed(error);
    return;
  }
  const now = Date.now();
  const ended: string[] = [];
  for (const [key, raw] of Object.entries(stored)) {
    const ban = parseBan(raw);
    if (ban === null || ban.until <= now) {
      ended.push(key);
      continue;
    }
    list.apply({ op: 'ban', key, ...ban });
  }
  if (ended.length > 0) redis.client.hdel(hash, ...ended).catch(redis.failed);
  // Bans made here while Redis was away reach the others now (and the hash).
  list.republish();
}

function parseBan(raw: string): { until: number; since: number; reason: string; level: number } | null {
  try {
    const value = JSON.parse(raw) as Record<string, unknown>;
    if (typeof value.until !== 'number' || typeof value.since !== 'number' || typeof value.reason !== 'string' || typeof value.level !== 'number') return null;
    return { until: value.until, since: value.since, reason: value.reason, level: value.level };
  } catch {
    return null;
  }
}

/** A message from another instance (of this version) has this shape; anything else is ignored. */
function isBanChange(value: unknown): value is BanChange {
  if (typeof value !== 'object' || value === null) return false;
  const op = (value as { op?: unknown }).op;
  return op === 'ban' || op === 'lift' || op === 'lift_all' || op === 'violation';
}
