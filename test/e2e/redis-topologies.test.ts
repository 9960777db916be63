/**
 * state.redis against a Redis Cluster (three primaries) and through a Sentinel: rate limits and
 * connection counts shared, bans told, a shared cache purged by prefix (a scan of every primary).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { cacheStatus, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { admin, requestFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy, type RunningProxy } from '../helpers/proxy.ts';
import { redisCliMissing, redisMissing, startRedisCluster, startRedisWithSentinel } from '../helpers/redis.ts';

const skip = redisMissing ?? false;

/** Two instances on `redis`, each with a tight limit, a shared cache and an admin listener. */
async function pair(t: TestContext, redis: NonNullable<NonNullable<ConfigInput['state']>['redis']>): Promise<[RunningProxy, RunningProxy]> {
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(`body of ${req.url}`);
  });
  const start = () =>
    startProxy(t, {
      admin: { address: '127.0.0.1:0' },
      upstreams: { app: { servers: [{ url: origin.url }] } },
      routes: [
        { match: { path_prefix: '/tight' }, upstream: 'app', rate_limits: [{ name: 'per-ip', rate: '5/m', burst: 4 }] },
        { match: {}, upstream: 'app', cache: { enabled: true, store: 'shared' } },
      ],
      cache: { stores: { shared: { type: 'redis' } } },
      protection: { max_connections_per_client: 50 },
      state: { redis: { timeout: '2s', ...redis } },
    });
  return [await start(), await start()];
}

async function exercise(a: RunningProxy, b: RunningProxy): Promise<void> {
  for (const proxy of [a, b]) assert.equal((proxy.gatehouse.status() as { redis: { degraded: boolean } }).redis.degraded, false);
  const codes: number[] = [];
  for (const proxy of [a, b, a, b, a, b]) codes.push((await requestFrom('127.0.0.2', `${proxy.url}/tight`)).status);
  assert.equal(codes.filter((c) => c === 200).length, 5, `one limit: ${codes.join(' ')}`);
  const get = (proxy: RunningProxy, path: string) => fetchRaw(`${proxy.url}${path}`, { host: 'app.example' });
  for (const path of ['/p/1', '/p/2', '/q']) await get(a, path);
  assert.equal(cacheStatus(await get(b, '/p/1')), 'gatehouse; hit');
  const purge = await fetchRaw(`http://127.0.0.1:${b.gatehouse.adminAddress?.port}/cache/purge?prefix=${encodeURIComponent('http://app.example/p/')}`, {}, 'POST');
  assert.equal(JSON.parse(purge.body.toString()).purged, 2);
  await waitFor(async () => !cacheStatus(await get(a, '/p/2')).includes('hit'), 2000, 'the prefix purge to reach A');
  assert.equal(cacheStatus(await get(b, '/q')), 'gatehouse; hit', 'outside the prefix');
  assert.equal((await admin(a.gatehouse.adminAddress?.port ?? 0, 'POST', '/bans/127.0.0.3?duration=10m')).status, 200);
  await waitFor(() => b.gatehouse.protection().state.bans.remaining('127.0.0.3') > 0, 2000, 'the ban on B');
}

test('Redis Cluster: limits, cache (prefix purge over every primary) and bans shared', { skip: redisCliMissing ?? false }, async (t) => {
  const nodes = await startRedisCluster(t);
  const [a, b] = await pair(t, { cluster: nodes });
  await exercise(a, b);
});

test('Redis through Sentinel: limits, cache and bans shared', { skip }, async (t) => {
  const { sentinel } = await startRedisWithSentinel(t);
  const [a, b] = await pair(t, { sentinels: [sentinel], name: 'gatehouse' });
  await exercise(a, b);
});
