/**
 * The RateLimitStore contract: every store (in memory, in memory shared by worker threads) must pass
 * this suite. It uses the real clock, so that a store that keeps time itself (Redis's TIME) can
 * run it too; waits are on conditions, with intervals of tens of milliseconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RedisState } from '../../src/core/redis-state.ts';
import { RedisRateLimitStore } from '../../src/middleware/rate-limit/redis-store.ts';
import { allocateSharedTable } from '../../src/core/shared-table.ts';
import { MemoryRateLimitStore } from '../../src/middleware/rate-limit/memory-store.ts';
import { SharedRateLimitStore } from '../../src/middleware/rate-limit/shared-store.ts';
import type { RateLimitRule, RateLimitStore, TakeResult } from '../../src/middleware/rate-limit/store.ts';
import { waitFor } from '../helpers/http.ts';
import { connectedRedisState, redisMissing, startRedis } from '../helpers/redis.ts';

interface StoreUnderTest {
  readonly name: string;
  create(): RateLimitStore | Promise<RateLimitStore>;
  /** Why the suite is skipped here (a server it needs is missing). */
  readonly skip?: string;
  /** Runs before the suite (starts a server it needs). */
  readonly setup?: () => Promise<void>;
}

/** The Redis one: a redis-server for the whole suite (started in its before hook). */
let redisUrl = '';

/** Stops registered by the suite's setup, run by its after hook. */
const stops: (() => unknown)[] = [];

async function startSuiteRedis(): Promise<void> {
  redisUrl = (await startRedis({ after: (fn) => stops.push(fn) })).url;
}

/** A Redis-backed store whose Redis is reachable (it starts degraded until connected). */
async function redisStore(url = redisUrl, prefix = `contract${++unique}:`, over: Record<string, unknown> = {}): Promise<RedisRateLimitStore & { state: RedisState }> {
  const { state, config } = await connectedRedisState(url, prefix, over);
  const store = new RedisRateLimitStore(state, new MemoryRateLimitStore({ maxEntries: 10_000 }), {
    ...config.rate_limits,
    failClosed: config.on_failure === 'closed',
    maxEntries: 10_000,
  });
  const close = store.close.bind(store);
  return Object.assign(store, {
    state,
    close: () => {
      close();
      state.close();
    },
  });
}

const STORES: StoreUnderTest[] = [
  { name: 'memory', create: () => new MemoryRateLimitStore({ maxEntries: 10_000 }) },
  { name: 'shared memory (worker threads)', create: () => new SharedRateLimitStore(allocateSharedTable(10_000)) },
  { name: 'redis (several instances)', create: () => redisStore(), setup: startSuiteRedis, ...(redisMissing === null ? {} : { skip: redisMissing }) },
];

let unique = 0;
/** A key no other test uses. */
const key = (label: string): string => `contract/${label}/${++unique}`;

function contract(under: StoreUnderTest): void {
  describe(`RateLimitStore contract: ${under.name}`, { ...(under.skip === undefined ? {} : { skip: under.skip }) }, () => {
    if (under.setup !== undefined) {
      before(under.setup);
      after(async () => {
        for (const stop of stops.splice(0)) await stop();
      });
    }
    const open = async (t: import('node:test').TestContext): Promise<RateLimitStore> => {
      const store = await under.create();
      t.after(() => store.close());
      return store;
    };
    const take = async (store: RateLimitStore, k: string, rule: RateLimitRule, cost = 1): Promise<TakeResult> => store.take(k, rule, cost);

    test('a new key allows burst + 1 at once, counting down, then refuses', async (t) => {
      const store = await open(t);
      const rule = { interval: 1000, burst: 3 };
      const k = key('burst');
      const remaining: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await take(store, k, rule);
        assert.equal(r.allowed, true, `request ${i + 1}`);
        assert.equal(r.retryAfterMs, 0);
        remaining.push(r.remaining);
      }
      assert.deepEqual(remaining, [3, 2, 1, 0]);
      const refused = await take(store, k, rule);
      assert.equal(refused.allowed, false);
      assert.equal(refused.remaining, 0);
      assert.ok(refused.retryAfterMs > 900 && refused.retryAfterMs <= 1000, `retry after ${refused.retryAfterMs} ms`);
      assert.ok(refused.resetMs > 3900 && refused.resetMs <= 4000, `reset in ${refused.resetMs} ms`);
    });

    test('a refused key is allowed again once retryAfterMs has passed, not before', async (t) => {
      const store = await open(t);
      const rule = { interval: 80, burst: 0 };
      const k = key('refill');
      assert.equal((await take(store, k, rule)).allowed, true);
      const refused = await take(store, k, rule);
      assert.equal(refused.allowed, false);
      const from = performance.now();
      await waitFor(async () => (await take(store, k, rule)).allowed, 2000, 'the key to refill');
      const waited = performance.now() - from;
      assert.ok(waited >= refused.retryAfterMs - 15, `allowed after ${waited.toFixed(0)} ms, retry-after said ${refused.retryAfterMs.toFixed(0)}`);
    });

    test('a refused request charges nothing', async (t) => {
      const store = await open(t);
      const rule = { interval: 60, burst: 0 };
      const k = key('no-charge');
      await take(store, k, rule);
      for (let i = 0; i < 20; i++) assert.equal((await take(store, k, rule)).allowed, false);
      await waitFor(async () => (await take(store, k, rule)).allowed, 2000, 'the key to refill');
      // Hammering while refused did not push the next allowance further out than one interval.
      const refused = await take(store, k, rule);
      assert.ok(!refused.allowed && refused.retryAfterMs <= 60);
    });

    test('keys are independent, and each is charged under the rule it is taken with', async (t) => {
      const store = await open(t);
      const a = key('a');
      const b = key('b');
      assert.equal((await take(store, a, { interval: 1000, burst: 0 })).allowed, true);
      assert.equal((await take(store, a, { interval: 1000, burst: 0 })).allowed, false);
      for (let i = 0; i < 5; i++) assert.equal((await take(store, b, { interval: 1000, burst: 4 })).allowed, true, `b ${i}`);
      assert.equal((await take(store, b, { interval: 1000, burst: 4 })).allowed, false);
    });

    test('a cost charges several requests at once', async (t) => {
      const store = await open(t);
      const rule = { interval: 1000, burst: 4 };
      const k = key('cost');
      const r = await take(store, k, rule, 3);
      assert.equal(r.allowed, true);
      assert.equal(r.remaining, 2);
      assert.equal((await take(store, k, rule, 3)).allowed, false, '3 more do not fit');
      assert.equal((await take(store, k, rule, 2)).allowed, true, '2 do');
      assert.equal((await take(store, key('too-big'), rule, 6)).allowed, false, 'more than burst + 1 never fits');
    });

    test('aheadMs says how far ahead of the sustained rate a key is', async (t) => {
      const store = await open(t);
      const rule = { interval: 1000, burst: 5 };
      const k = key('ahead');
      const first = await take(store, k, rule);
      assert.equal(first.aheadMs, 0, 'the first request is at the rate');
      const second = await take(store, k, rule);
      assert.ok(second.aheadMs > 900 && second.aheadMs <= 1000, `second ${second.aheadMs}`);
      const third = await take(store, k, rule);
      assert.ok(third.aheadMs > 1900 && third.aheadMs <= 2000, `third ${third.aheadMs}`);
    });

    test('reset forgets a key', async (t) => {
      const store = await open(t);
      const rule = { interval: 10_000, burst: 1 };
      const k = key('reset');
      await take(store, k, rule);
      await take(store, k, rule);
      assert.equal((await take(store, k, rule)).allowed, false);
      await store.reset(k);
      assert.equal((await take(store, k, rule)).allowed, true);
    });

    test('concurrent takes on one key never allow more than burst + 1', async (t) => {
      const store = await open(t);
      const rule = { interval: 10_000, burst: 9 };
      const k = key('concurrent');
      const results = await Promise.all(Array.from({ length: 50 }, () => take(store, k, rule)));
      assert.equal(results.filter((r) => r.allowed).length, 10);
    });

    test('over time, the sustained rate is what passes', async (t) => {
      const store = await open(t);
      const rule = { interval: 25, burst: 2 };
      const k = key('sustained');
      let allowed = 0;
      // A loaded machine can stall this loop longer than the burst lasts: what such a stall could
      // not take is lost to the client, not owed, so the lower bound leaves it out.
      let lost = 0;
      const started = performance.now();
      let last = started;
      while (performance.now() - started < 500) {
        const gap = performance.now() - last;
        if (gap > (rule.burst + 1) * rule.interval) lost += (gap - (rule.burst + 1) * rule.interval) / rule.interval;
        if ((await take(store, k, rule)).allowed) allowed++;
        last = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const elapsed = performance.now() - started;
      const expected = elapsed / rule.interval + rule.burst + 1;
      assert.ok(allowed <= expected + 1 && allowed >= expected - lost - 3, `${allowed} allowed in ${elapsed.toFixed(0)} ms (expected ~${expected.toFixed(1)}, ${lost.toFixed(1)} lost to stalls)`);
    });
  });
}

for (const under of STORES) contract(under);

describe('MemoryRateLimitStore', () => {
  test('memory is bounded: past maxEntries the least recently charged keys go', () => {
    const store = new MemoryRateLimitStore({ maxEntries: 1000 });
    try {
      const rule = { interval: 60_000, burst: 0 };
      for (let i = 0; i < 50_000; i++) store.take(`flood/${i}`, rule, 1);
      assert.equal(store.size, 1000);
      assert.equal(store.evicted, 49_000);
      assert.equal(store.take('flood/49999', rule, 1).allowed, false, 'a recent key is remembered');
      assert.equal(store.take('flood/0', rule, 1).allowed, true, 'an evicted key starts again');
    } finally {
      store.close();
    }
  });

  test('sweep drops keys whose bucket is full again', () => {
    let now = 0;
    const store = new MemoryRateLimitStore({ maxEntries: 1000, now: () => now });
    try {
      for (let i = 0; i < 10; i++) store.take(`k${i}`, { interval: 100, burst: 0 }, 1);
      now = 50;
      store.sweep();
      assert.equal(store.size, 10);
      now = 101;
      store.sweep();
      assert.equal(store.size, 0);
    } finally {
      store.close();
    }
  });
});

describe('Redis rate-limit store: several instances, reservations, Redis trouble', { skip: redisMissing ?? false }, () => {
  test('two instances share one limit; unspent tokens go back after hold', async (t) => {
    const redis = await startRedis(t);
    const prefix = `pair${++unique}:`;
    const a = await redisStore(redis.url, prefix, { rate_limits: { hold: '100ms' } });
    const b = await redisStore(redis.url, prefix, { rate_limits: { hold: '100ms' } });
    t.after(() => {
      a.close();
      b.close();
    });
    const rule = { interval: 60_000, burst: 9 };
    let allowed = 0;
    for (let i = 0; i < 8; i++) for (const store of [a, b]) if ((await store.take('k', rule, 1)).allowed) allowed++;
    assert.equal(allowed, 10, 'burst + 1 in total');
    // A reserves a batch (10% of 100 free) and spends one; what it does not spend goes back.
    const big = { interval: 60_000, burst: 99 };
    assert.equal((await a.take('big', big, 1)).allowed, true);
    assert.equal(a.counters.reservations > 0, true);
    await waitFor(() => a.counters.returned > 0, 2000, 'A to give its unspent tokens back');
    assert.equal((await b.take('big', big, 99)).allowed, true, '99 of 100 are free again');
    // The fast path: after one reservation, the next requests spend the batch without Redis, synchronously.
    const first = await b.take('fast', big, 1);
    assert.equal(first.allowed, true);
    const reservations = b.counters.reservations;
    const local = b.counters.local;
    const second = b.take('fast', big, 1);
    assert.ok(!(second instanceof Promise), 'answered synchronously from the reservation');
    assert.equal(second.allowed, true);
    assert.equal(second.remaining, first.remaining - 1);
    assert.equal(b.counters.reservations, reservations, 'no Redis call');
    assert.equal(b.counters.local, local + 1);
  });

  test('memory is bounded: past maxEntries the least recently reserved keys go, and are counted', async (t) => {
    const redis = await startRedis(t);
    const store = await redisStore(redis.url, `bounded${++unique}:`);
    t.after(() => store.close());
    store.maxEntries = 5;
    const rule = { interval: 60_000, burst: 0 };
    for (let i = 0; i < 8; i++) assert.equal((await store.take(`flood/${i}`, rule, 1)).allowed, true);
    assert.equal(store.size, 5);
    assert.equal(store.evicted, 3);
    assert.equal((await store.take('flood/0', rule, 1)).allowed, false, 'an evicted key is still limited: Redis remembers it');
  });

  test('Redis gone: fail open limits per instance; fail closed refuses; both recover', async (t) => {
    const redis = await startRedis(t);
    const open = await redisStore(redis.url, `open${++unique}:`);
    const closed = await redisStore(redis.url, `closed${++unique}:`, { on_failure: 'closed' });
    t.after(() => {
      open.close();
      closed.close();
    });
    const rule = { interval: 60_000, burst: 1 };
    await redis.kill();
    await waitFor(() => !open.state.available && !closed.state.available, 3000, 'both to notice');
    const local = [await open.take('k', rule, 1), await open.take('k', rule, 1), await open.take('k', rule, 1)].map((r) => r.allowed);
    assert.deepEqual(local, [true, true, false], 'the local limit');
    assert.equal((await closed.take('k', rule, 1)).allowed, false, 'fail closed');
    assert.ok(open.counters.fallback >= 3);
    await redis.restart();
    await waitFor(() => open.state.available && closed.state.available, 5000, 'both to recover');
    assert.equal((await closed.take('k2', rule, 1)).allowed, true, 'shared again');
  });
});
