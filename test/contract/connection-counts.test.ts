/**
 * The ConnectionCounts contract (`max_connections_per_client`): in memory, in memory shared by
 * worker threads, and in Redis across instances (which answers asynchronously).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ProtectionState, type ConnectionCounts } from '../../src/core/protection-state.ts';
import { allocateSharedTable } from '../../src/core/shared-table.ts';
import { RedisConnectionCounts } from '../../src/middleware/rate-limit/redis-connections.ts';
import { SharedConnectionCounts } from '../../src/middleware/rate-limit/shared-store.ts';
import { waitFor } from '../helpers/http.ts';
import { connectedRedisState, redisMissing, startRedis } from '../helpers/redis.ts';

let redisUrl = '';
const stops: (() => unknown)[] = [];
let prefixes = 0;

/** Counts of one instance on the suite's Redis (prefix shared when given, to act as another instance). */
async function redisCounts(t: import('node:test').TestContext, prefix: string, url = redisUrl): Promise<RedisConnectionCounts> {
  const { state } = await connectedRedisState(url, prefix);
  const counts = new RedisConnectionCounts(state, new ProtectionState().connections);
  t.after(() => {
    counts.stop();
    state.close();
  });
  return counts;
}

const IMPLEMENTATIONS: { name: string; redis: boolean; create: (t: import('node:test').TestContext) => Promise<ConnectionCounts> }[] = [
  { name: 'memory', redis: false, create: async () => new ProtectionState().connections },
  { name: 'shared memory (worker threads)', redis: false, create: async () => new SharedConnectionCounts(allocateSharedTable(1000)) },
  { name: 'redis (several instances)', redis: true, create: (t) => redisCounts(t, `conn-contract${++prefixes}:`) },
];

for (const { name, redis, create } of IMPLEMENTATIONS) {
  describe(`ConnectionCounts contract: ${name}`, { skip: redis ? (redisMissing ?? false) : false }, () => {
    if (redis) {
      before(async () => {
        redisUrl = (await startRedis({ after: (fn) => stops.push(fn) })).url;
      });
      after(async () => {
        for (const stop of stops.splice(0)) await stop();
      });
    }

    test('up to max per key, then refused; a close frees one; keys are independent', async (t) => {
      const counts = await create(t);
      const open = async (key: string, max: number): Promise<boolean> => counts.open(key, max);
      assert.deepEqual([await open('a', 2), await open('a', 2), await open('a', 2)], [true, true, false]);
      assert.equal(await open('b', 2), true, 'another key');
      counts.close('a');
      await waitFor(async () => {
        const ok = await open('a', 2);
        if (ok) counts.close('a');
        return ok;
      }, 2000, 'the freed slot');
      assert.ok(counts.size >= 1);
    });
  });
}

describe('ConnectionCounts in Redis: one count across instances', { skip: redisMissing ?? false }, () => {
  before(async () => {
    redisUrl = (await startRedis({ after: (fn) => stops.push(fn) })).url;
  });
  after(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  test('two instances share the limit; concurrent opens never pass it', async (t) => {
    const prefix = `conn-pair${++prefixes}:`;
    const a = await redisCounts(t, prefix);
    const b = await redisCounts(t, prefix);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).open('client', 5)));
    assert.equal(results.filter(Boolean).length, 5);
    // One that was admitted closes: the other instance may use its slot.
    const holder = results.findIndex(Boolean) % 2 === 0 ? a : b;
    const other = holder === a ? b : a;
    assert.equal(await other.open('client', 5), false);
    holder.close('client');
    await waitFor(async () => (await other.open('client', 5)) === true, 2000, 'the other instance to use the freed slot');
  });

  test('a connection opened while Redis was away is counted in Redis once it is back', async (t) => {
    const redis = await startRedis(t);
    const prefix = `conn-outage${++prefixes}:`;
    const counts = await redisCounts(t, prefix, redis.url);
    await redis.kill();
    assert.equal(await counts.open('client', 1), true, 'the local count decides');
    assert.equal(await counts.open('client', 1), false, 'and holds the limit');
    await redis.restart();
    // The restarted Redis is empty: only this instance's rewrite puts its count there.
    await waitFor(async () => (await redis.command(`HLEN ${prefix}{conn}:client`)) === ':1', 3000, 'the count written again');
    counts.close('client');
    await waitFor(async () => (await redis.command(`HLEN ${prefix}{conn}:client`)) === ':0', 3000, 'the close told to Redis');
  });
});
