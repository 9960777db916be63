/**
 * The rate-limit store of several instances: one GCRA number per key in Redis (see store.ts), so
 * that a limit holds across every instance. A round trip per request would cost far more than the
 * limit saves, so each instance *reserves* tokens: one atomic Lua call charges a batch to the key
 * and the instance spends it locally, synchronously, with no Redis call (the fast path). A batch
 * takes at most `share` of the key's free tokens (and at most `batch`), so near the limit batches
 * shrink to one token and instances cannot hoard what another needs; tokens not spent within
 * `hold` go back. A refusal is remembered locally until it could change, so a flood of refused
 * requests costs no Redis calls either. Accuracy: docs/scaling.md#rate-limits.
 *
 * While Redis is unavailable (RedisState degraded), or a call fails or runs past the timeout,
 * `fallback` answers: a per-instance store (fail open), or a refusal (fail closed).
 */
import type { RedisState } from '../../core/redis-state.ts';
import type { LocalRateLimitStore } from '../../core/protection-state.ts';
import type { RateLimitRule, TakeResult } from './store.ts';

/** GCRA with reservation (times in ms from Redis's own clock, the one all instances share). */
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local limit = (tonumber(ARGV[2]) + 1) * interval
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local free = math.floor((now + limit - tat) / interval + 1e-9)
if free < cost then
  return {0, tostring(tat + cost * interval - limit - now), tostring(tat - now), tostring(tat + interval - limit - now)}
end
local grant = math.max(cost, math.floor(free * tonumber(ARGV[5])))
grant = math.min(grant, tonumber(ARGV[4]), free)
tat = tat + grant * interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
return {grant, tostring(free - grant), tostring(tat - now)}
`;

/** Gives `ARGV[1]` unspent tokens back: the key's TAT moves back by that many intervals. */
const RELEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1]) * tonumber(ARGV[2])
if tat <= now then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000) end
return 1
`;

/** The fast-path settings (`state.redis.rate_limits`). */
export interface ReservationSettings {
  readonly batch: number;
  readonly share: number;
  readonly hold: number;
  /** Refuse while Redis is unavailable (fail closed) instead of limiting locally. */
  readonly failClosed: boolean;
  /** Most keys held locally (protection.max_clients); the least recently reserved go first. */
  readonly maxEntries: number;
}

/** What this instance holds for one key. */
interface Reservation {
  /** Reserved and not yet spent. */
  tokens: number;
  /** Local time after which unspent tokens go back to Redis. */
  expires: number;
  /** Local time before which a request is refused without asking Redis (0: not refused). */
  blockedUntil: number;
  /** The key's TAT in local time as this instance spends: tells how far ahead of the rate a request is. */
  tat: number;
  /** Free tokens in Redis at the last reservation (for the RateLimit header's `r`). */
  free: number;
  interval: number;
}

type Reply = [number, string, string, string?];

/** Counters for `GET /status` (protection.redis_rate_limits). */
export interface ReservationCounters {
  /** Requests answered from a local reservation (no Redis call). */
  local: number;
  /** Reservations asked of Redis. */
  reservations: number;
  /** Requests answered by the fallback (Redis unavailable, failed or too slow). */
  fallback: number;
  /** Unspent tokens given back. */
  returned: number;
}

export class RedisRateLimitStore implements LocalRateLimitStore {
  readonly #redis: RedisState;
  readonly #fallback: LocalRateLimitStore;
  readonly #settings: ReservationSettings;
  readonly #held = new Map<string, Reservation>();
  #maxEntries: number;
  /** Reservations #evictOldest dropped (the fallback counts its own). */
  #evicted = 0;
  readonly #sweeper: NodeJS.Timeout;
  readonly counters: ReservationCounters = { local: 0, reservations: 0, fallback: 0, returned: 0 };

  constructor(redis: RedisState, fallback: LocalRateLimitStore, settings: ReservationSettings) {
    this.#redis = redis;
    this.#fallback = fallback;
    this.#settings = settings;
    this.#maxEntries = settings.maxEntries;
    const client = redis.client;
    client.defineCommand('gatehouseReserve', { numberOfKeys: 1, lua: RESERVE });
    client.defineCommand('gatehouseRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#sweeper = setInterval(() => this.sweep(), Math.max(100, settings.hold));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#redis.available ? this.#held.size : this.#fallback.size;
  }

  get evicted(): number {
    return this.#evicted + this.#fallback.evicted;
  }

  /** Bounds the local reservations and the fallback alike. */
  set maxEntries(value: number) {
    this.#maxEntries = value;
    this.#fallback.maxEntries = value;
  }

  take(key: string, rule: RateLimitRule, cost: number): TakeResult | Promise<TakeResult> {
    if (!this.#redis.available) return this.#local(key, rule, cost);
    const now = performance.now();
    const held = this.#held.get(key);
    if (held !== undefined && held.interval === rule.interval) {
      if (held.tokens >= cost && now < held.expires) {
        this.counters.local++;
        return spend(held, cost, now);
      }
      if (now < held.blockedUntil) return refused(held.blockedUntil - now, held.tat - now);
    }
    return this.#reserve(key, rule, cost);
  }

  async #reserve(key: string, rule: RateLimitRule, cost: number): Promise<TakeResult> {
    this.counters.reservations++;
    const want = Math.max(cost, this.#settings.batch);
    let reply: Reply;
    try {
      const client = this.#redis.client as unknown as ReserveCommands;
      reply = await client.gatehouseReserve(this.#redisKey(key), rule.interval, rule.burst, cost, want, this.#settings.share);
    } catch (error: unknown) {
      this.#redis.failed(error);
      return this.#local(key, rule, cost);
    }
    const now = performance.now();
    let held = this.#held.get(key);
    if (held === undefined || held.interval !== rule.interval) {
      if (held !== undefined) this.#giveBack(key, held);
      held = { tokens: 0, expires: 0, blockedUntil: 0, tat: now, free: 0, interval: rule.interval };
      this.#held.delete(key);
      this.#held.set(key, held);
      if (this.#held.size > this.#maxEntries) this.#evictOldest();
    } else {
      // The most recently reserved last: eviction takes the least recently reserved (insertion order).
      this.#held.delete(key);
      this.#held.set(key, held);
    }
    const granted = Number(reply[0]);
    if (granted === 0) {
      // Another request of this instance may have reserved meanwhile.
      if (held.tokens >= cost) return spend(held, cost, now);
      const blockedFor = Number(reply[3] ?? 0);
      held.blockedUntil = blockedFor > 0 ? now + blockedFor : 0;
      held.tat = now + Number(reply[2]);
      return refused(Number(reply[1]), Number(reply[2]));
    }
    const tatAfter = now + Number(reply[2]);
    // Tokens held past `hold` go back rather than being spent late.
    if (now >= held.expires) this.#giveBack(key, held);
    // Spent first: the tokens of this reservation follow those this instance already holds.
    if (held.tokens === 0) held.tat = tatAfter - granted * rule.interval;
    held.tokens += granted;
    held.free = Number(reply[1]);
    held.expires = now + this.#settings.hold;
    held.blockedUntil = 0;
    return spend(held, cost, now);
  }

  /** Without Redis: the per-instance store (fail open) or a refusal (fail closed). */
  #local(key: string, rule: RateLimitRule, cost: number): TakeResult {
    this.counters.fallback++;
    if (this.#settings.failClosed) return CLOSED;
    return this.#fallback.take(key, rule, cost) as TakeResult;
  }

  reset(key: string): void {
    this.#held.delete(key);
    void this.#fallback.reset(key);
    if (this.#redis.available) this.#redis.client.del(this.#redisKey(key)).catch(this.#redis.failed);
  }

  /** Gives back tokens held past `hold` and forgets keys with nothing left to remember. */
  sweep(): void {
    const now = performance.now();
    for (const [key, held] of this.#held) {
      if (now < held.expires || now < held.blockedUntil) continue;
      this.#giveBack(key, held);
      this.#held.delete(key);
    }
  }

  /** A flood of new keys: the least recently reserved one goes (its tokens back to Redis). */
  #evictOldest(): void {
    const oldest = this.#held.entries().next();
    if (oldest.done === true) return;
    this.#giveBack(oldest.value[0], oldest.value[1]);
    this.#held.delete(oldest.value[0]);
    this.#evicted++;
  }

  #giveBack(key: string, held: Reservation): void {
    const tokens = held.tokens;
    held.tokens = 0;
    if (tokens <= 0 || !this.#redis.available) return;
    this.counters.returned += tokens;
    const client = this.#redis.client as unknown as ReserveCommands;
    client.gatehouseRelease(this.#redisKey(key), tokens, held.interval).catch(this.#redis.failed);
  }

  #redisKey(key: string): string {
    return `${this.#redis.prefix}rl:${key}`;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const [key, held] of this.#held) this.#giveBack(key, held);
    this.#held.clear();
    void this.#fallback.close();
  }
}

/** The scripts as ioredis defines them on the client. */
interface ReserveCommands {
  gatehouseReserve(key: string, interval: number, burst: number, cost: number, want: number, share: number): Promise<Reply>;
  gatehouseRelease(key: string, tokens: number, interval: number): Promise<number>;
}

function spend(held: Reservation, cost: number, now: number): TakeResult {
  held.tokens -= cost;
  if (held.tat < now) held.tat = now;
  held.tat += cost * held.interval;
  const ahead = held.tat - now - held.interval;
  return {
    allowed: true,
    remaining: held.free + held.tokens,
    resetMs: held.tat - now,
    retryAfterMs: 0,
    aheadMs: ahead > 1e-6 ? ahead : 0,
  };
}

/** Fail closed: every request while Redis is unavailable gets this one answer (a second to wait). */
const CLOSED: TakeResult = Object.freeze(refused(1000, 1000));

function refused(retryAfterMs: number, resetMs: number): TakeResult {
  return { allowed: false, remaining: 0, resetMs: Math.max(0, resetMs), retryAfterMs: Math.max(0, retryAfterMs), aheadMs: 0 };
}
