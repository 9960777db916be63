/**
 * Several Gatehouse instances sharing state through a real redis-server (docs/scaling.md): one
 * rate limit across three instances, bans that reach every instance, one cache (a response cached
 * through one is a hit through another; a purge anywhere reaches all), and Redis trouble (killed,
 * frozen) that never fails a request and heals by itself.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { closedPort, echo, startBackend } from '../helpers/backend.ts';
import { serverView } from '../helpers/upstreams.ts';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import { Primary } from '../../src/workers/primary.ts';
import { Redis } from 'ioredis';
import { loadRedisClient, RedisState } from '../../src/core/redis-state.ts';
import { utimesSync, writeFileSync } from 'node:fs';
import { tempFile } from '../helpers/process.ts';
import { admin, Connection, requestFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { cacheStatus, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy, type RunningProxy } from '../helpers/proxy.ts';
import { redisMissing, startRedis, type TestRedis } from '../helpers/redis.ts';
import { collectingLogger } from '../helpers/logs.ts';

const skip = redisMissing ?? false;
let prefixes = 0;

interface Instance {
  readonly proxy: RunningProxy;
  readonly adminPort: number;
}

/** Three instances on one Redis (their own key prefix per test), one echo backend. */
async function cluster(t: TestContext, redis: TestRedis, extra: Partial<ConfigInput> = {}, count = 3): Promise<Instance[]> {
  const backend = await startBackend(t, echo());
  const prefix = `test${++prefixes}:${process.pid}:`;
  const instances: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const proxy = await startProxy(t, {
      admin: { address: '127.0.0.1:0' },
      upstreams: { app: { servers: [{ url: backend.url }] } },
      routes: [
        { name: 'tight', match: { path_prefix: '/tight' }, upstream: 'app', rate_limits: [{ name: 'per-ip', rate: '5/m', burst: 4 }] },
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'app', rate_limits: [{ name: 'per-ip', rate: '40/s', burst: 39 }] },
        { name: 'open', match: {}, upstream: 'app', rate_limits: [{ name: 'per-ip', rate: '100000/s', burst: 1000 }] },
      ],
      ...extra,
      // A bound a loaded machine keeps to: a call past it hands limits to the local fallbacks.
      state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s', ...(extra.state?.redis ?? {}) } },
    });
    instances.push({ proxy, adminPort: proxy.gatehouse.adminAddress?.port ?? 0 });
  }
  return instances;
}

function redisStatus(instance: Instance): { degraded: boolean; connected: boolean } {
  return (instance.proxy.gatehouse.status() as { redis: { degraded: boolean; connected: boolean } }).redis;
}

/** Status codes of `n` requests from `client` through `instance`. */
async function statuses(instance: Instance, client: string, path: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await requestFrom(client, `${instance.proxy.url}${path}`)).status);
  return out;
}

test('one limit across three instances: a tight limit admits burst + 1 in total', { skip }, async (t) => {
  const redis = await startRedis(t);
  const [a, b, c] = (await cluster(t, redis)) as [Instance, Instance, Instance];
  const all = [...(await statuses(a, '127.0.0.2', '/tight', 3)), ...(await statuses(b, '127.0.0.2', '/tight', 3)), ...(await statuses(c, '127.0.0.2', '/tight', 3))];
  assert.equal(all.filter((s) => s === 200).length, 5, `statuses ${all.join(' ')}`);
  assert.ok(all.slice(5).every((s) => s === 429));
  assert.equal((await requestFrom('127.0.0.3', `${c.proxy.url}/tight`)).status, 200, 'another client has its own bucket');
});

test('a global limit holds within 5% under load spread over three instances', { skip }, async (t) => {
  const redis = await startRedis(t);
  // cluster() gives a generous bound: a call past it would hand the limit to the instances' local
  // fallbacks, which is another test's subject; this one is about the reservations' accuracy.
  const instances = await cluster(t, redis);
  const rule = { perSecond: 40, burst: 39 };
  let allowed = 0;
  let refused = 0;
  let other = 0;
  const started = performance.now();
  const until = started + 3000;
  await Promise.all(
    instances.flatMap((instance) =>
      [0, 1].map(async () => {
        while (performance.now() < until) {
          const status = (await requestFrom('127.0.0.4', `${instance.proxy.url}/api`)).status;
          if (status === 200) allowed++;
          else if (status === 429) refused++;
          else other++;
        }
      }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  const expected = rule.burst + 1 + elapsed * rule.perSecond;
  const error = (allowed - expected) / expected;
  t.diagnostic(`allowed ${allowed} of ${allowed + refused} in ${elapsed.toFixed(2)} s; the limit allows ${expected.toFixed(1)}: ${(error * 100).toFixed(1)}%`);
  assert.equal(other, 0);
  const fallbacks = instances.map((i) => (i.proxy.gatehouse.status() as { protection: { rate_limit_redis: { fallback: number } } }).protection.rate_limit_redis.fallback);
  assert.deepEqual(fallbacks, [0, 0, 0], 'every request was limited through Redis');
  assert.ok(refused > allowed / 2, `the load went well past the limit (${refused} refused)`);
  assert.ok(Math.abs(error) <= 0.05, `allowed ${allowed}, expected ${expected.toFixed(1)} (${(error * 100).toFixed(1)}%)`);
});

test('a ban on one instance blocks the client on the others within a second; a lift frees it everywhere', { skip }, async (t) => {
  const redis = await startRedis(t);
  const [a, b, c] = (await cluster(t, redis)) as [Instance, Instance, Instance];
  for (const instance of [a, b, c]) assert.equal((await requestFrom('127.0.0.5', `${instance.proxy.url}/`)).status, 200);
  const banned = performance.now();
  assert.equal((await admin(a.adminPort, 'POST', '/bans/127.0.0.5?duration=10m')).status, 200);
  const refusedOn = async (instance: Instance): Promise<boolean> => {
    try {
      return (await requestFrom('127.0.0.5', `${instance.proxy.url}/`)).status !== 200;
    } catch {
      return true; // closed at accept
    }
  };
  // Within a second in each instance's ban list (polled in memory: a loaded machine's request time
  // is not the propagation's), then seen by the client.
  const bannedOn = (instance: Instance): boolean => instance.proxy.gatehouse.protection().state.bans.remaining('127.0.0.5') > 0;
  await waitFor(() => bannedOn(b) && bannedOn(c), 1000, 'the ban on B and C');
  t.diagnostic(`ban in force on B and C after ${(performance.now() - banned).toFixed(0)} ms`);
  assert.ok((await refusedOn(b)) && (await refusedOn(c)), 'the client is refused on B and C');
  const listed = (await admin(c.adminPort, 'GET', '/bans')).body as { bans: { client: string }[] };
  assert.deepEqual(
    listed.bans.map((ban) => ban.client),
    ['127.0.0.5'],
  );
  assert.equal((await admin(b.adminPort, 'DELETE', '/bans/127.0.0.5')).status, 200);
  await waitFor(() => !bannedOn(a) && !bannedOn(c), 1000, 'the lift on A and C');
  assert.ok(!(await refusedOn(a)) && !(await refusedOn(c)), 'the client is served on A and C');
});

test('an instance that starts (or reconnects) later enforces the bans already made', { skip }, async (t) => {
  const redis = await startRedis(t);
  const [a] = (await cluster(t, redis, {}, 1)) as [Instance];
  assert.equal((await admin(a.adminPort, 'POST', '/bans/127.0.0.6?duration=10m')).status, 200);
  const prefix = (a.proxy.gatehouse.config.state.redis as { key_prefix: string }).key_prefix;
  const backend = await startBackend(t, echo());
  const late = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app' }],
    state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s' } },
  });
  await waitFor(() => late.gatehouse.protection().state.bans.remaining('127.0.0.6') > 0, 2000, 'the stored ban on the late instance');
});

test('Redis killed mid-load: no request fails; limits fall back to local ones; restarted, they are shared again', { skip }, async (t) => {
  const redis = await startRedis(t);
  const instances = await cluster(t, redis);
  const [a, b, c] = instances as [Instance, Instance, Instance];
  let done = false;
  const failures: string[] = [];
  let served = 0;
  const load = Promise.all(
    instances.map(async (instance, i) => {
      let n = 0;
      while (!done) {
        // A new client now and then: its first request needs Redis.
        const client = `127.0.${10 + i}.${(n++ % 200) + 1}`;
        try {
          const status = (await requestFrom(client, `${instance.proxy.url}/`)).status;
          if (status !== 200) failures.push(`status ${status}`);
          else served++;
        } catch (error: unknown) {
          failures.push(String(error));
        }
      }
    }),
  );
  await waitFor(() => served > 100, 5000, 'load before the kill');
  await redis.kill();
  await waitFor(() => instances.every((instance) => redisStatus(instance).degraded), 3000, 'every instance to notice');
  const atKill = served;
  await waitFor(() => served > atKill + 200, 10_000, 'load while Redis is gone');
  // While Redis is away, each instance limits on its own: 5 per instance.
  assert.deepEqual(await statuses(a, '127.0.0.7', '/tight', 6), [200, 200, 200, 200, 200, 429]);
  await redis.restart();
  await waitFor(() => instances.every((instance) => !redisStatus(instance).degraded), 5000, 'every instance to recover');
  done = true;
  await load;
  assert.deepEqual(failures, []);
  const all = [...(await statuses(b, '127.0.0.8', '/tight', 3)), ...(await statuses(c, '127.0.0.8', '/tight', 3))];
  assert.equal(all.filter((s) => s === 200).length, 5, `shared again: ${all.join(' ')}`);
});

test('a frozen Redis adds no more than the configured bound to any request', { skip }, async (t) => {
  const redis = await startRedis(t);
  const [a] = (await cluster(t, redis, { state: { redis: { url: redis.url, timeout: '100ms' } } }, 1)) as [Instance];
  assert.equal((await requestFrom('127.0.1.1', `${a.proxy.url}/`)).status, 200);
  redis.pause();
  t.after(() => redis.resume());
  let slowest = 0;
  for (let i = 0; i < 30; i++) {
    // New clients: each needs a reservation from Redis, which answers nothing.
    const from = performance.now();
    const status = (await requestFrom(`127.0.1.${i + 2}`, `${a.proxy.url}/`)).status;
    slowest = Math.max(slowest, performance.now() - from);
    assert.equal(status, 200);
  }
  t.diagnostic(`slowest request while Redis was frozen: ${slowest.toFixed(0)} ms (bound 100 ms)`);
  // The bound (100 ms) plus a loaded machine's request time (unbounded, it would hang until Redis woke).
  assert.ok(slowest < 100 + 400, `slowest ${slowest.toFixed(0)} ms`);
  assert.equal(redisStatus(a).degraded, true);
  redis.resume();
  await waitFor(() => !redisStatus(a).degraded, 5000, 'recovery after the freeze');
});

test('a response cached through A is a hit through B and C; a purge on B removes it everywhere', { skip }, async (t) => {
  const redis = await startRedis(t);
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'catalog' });
    res.end(`body of ${req.url}`);
  });
  const prefix = `cache${++prefixes}:${process.pid}:`;
  const instances: Instance[] = [];
  for (let i = 0; i < 3; i++) {
    const proxy = await startProxy(t, {
      admin: { address: '127.0.0.1:0' },
      upstreams: { app: { servers: [{ url: origin.url }] } },
      routes: [{ match: {}, upstream: 'app', cache: { enabled: true, store: 'shared' } }],
      cache: { stores: { shared: { type: 'redis' } } },
      state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s' } },
    });
    instances.push({ proxy, adminPort: proxy.gatehouse.adminAddress?.port ?? 0 });
  }
  const [a, b, c] = instances as [Instance, Instance, Instance];
  const get = (instance: Instance, path: string) => fetchRaw(`${instance.proxy.url}${path}`, { host: 'app.example' });
  assert.equal(cacheStatus(await get(a, '/page')), 'gatehouse; fwd=uri-miss; stored');
  const onB = await get(b, '/page');
  assert.equal(cacheStatus(onB), 'gatehouse; hit');
  assert.equal(onB.body.toString(), 'body of /page');
  assert.equal(cacheStatus(await get(c, '/page')), 'gatehouse; hit');
  assert.equal(origin.count('/page'), 1, 'the origin was asked once');
  await get(a, '/other');
  const purged = await fetchRaw(`http://127.0.0.1:${b.adminPort}/cache/purge?url=${encodeURIComponent('http://app.example/page')}`, {}, 'POST');
  assert.equal(purged.status, 200);
  // Within a message's time every instance has dropped its copy; the next request goes to the origin once.
  await waitFor(async () => !cacheStatus(await get(a, '/page')).includes('hit'), 3000, 'the purge to reach A');
  assert.equal(cacheStatus(await get(c, '/page')), 'gatehouse; hit', 'refilled through A, shared again');
  assert.equal(origin.count('/page'), 2);
  // A tag purge through C: /page and /other go from every instance.
  await fetchRaw(`http://127.0.0.1:${c.adminPort}/cache/purge?tag=catalog`, {}, 'POST');
  await waitFor(async () => !cacheStatus(await get(b, '/other')).includes('hit'), 3000, 'the tag purge to reach B');
  assert.equal(origin.count('/other'), 2);
});

test('Redis gone: the cache serves from each instance\'s memory, and stores there', { skip }, async (t) => {
  const redis = await startRedis(t);
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(`body of ${req.url}`);
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: origin.url }] } },
    routes: [{ match: {}, upstream: 'app', cache: { enabled: true, store: 'shared' } }],
    cache: { stores: { shared: { type: 'redis' } } },
    state: { redis: { url: redis.url, key_prefix: `gone${++prefixes}:`, timeout: '1s' } },
  });
  const get = (path: string) => fetchRaw(`${proxy.url}${path}`, { host: 'app.example' });
  await get('/kept');
  await redis.kill();
  assert.equal(cacheStatus(await get('/kept')), 'gatehouse; hit');
  const miss = await get('/new');
  assert.equal(miss.status, 200);
  assert.equal(cacheStatus(await get('/new')), 'gatehouse; hit');
  // Back: purges told meanwhile were missed, so the memory tier starts again from Redis (empty here: no persistence).
  await redis.restart();
  const degraded = (): boolean => (proxy.gatehouse.status() as { redis: { degraded: boolean } }).redis.degraded;
  await waitFor(() => !degraded(), 5000, 'the instance to recover');
  assert.equal(origin.count('/kept'), 1);
  assert.notEqual(cacheStatus(await get('/kept')), 'gatehouse; hit', 'the memory tier was emptied on recovery');
  assert.equal(origin.count('/kept'), 2);
  assert.equal(cacheStatus(await get('/kept')), 'gatehouse; hit', 'stored again');
});

test('a server ejected by one instance is ejected by the others within a second', { skip }, async (t) => {
  const redis = await startRedis(t);
  const good = await startBackend(t, echo('good'));
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const prefix = `health${++prefixes}:`;
  const start = () =>
    startProxy(t, {
      upstreams: {
        app: {
          servers: [{ url: good.url }, { url: dead }],
          balance: 'round_robin',
          outlier_detection: { consecutive_failures: 1, base_ejection_time: '1m' },
        },
      },
      routes: [{ match: {}, upstream: 'app' }],
      state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s' } },
    });
  const a = await start();
  const b = await start();
  for (let i = 0; i < 4; i++) assert.equal((await requestFrom('127.0.0.1', `${a.url}/`)).status, 200, 'retried on the good server');
  assert.equal(serverView(a.gatehouse, dead).state, 'ejected');
  await waitFor(() => serverView(b.gatehouse, dead).state === 'ejected', 1000, 'B to eject the server A saw die');
});

test('worker threads with Redis: each worker uses the shared limit; bans from the admin API reach other instances', { skip }, async (t) => {
  const redis = await startRedis(t);
  const backend = await startBackend(t, echo());
  const prefix = `workers${++prefixes}:`;
  const config = {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', rate_limits: [{ name: 'per-ip', rate: '5/m', burst: 4 }] }],
    state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s' } },
  } satisfies Partial<ConfigInput>;
  const primary = await Primary.start(
    configFromObject({ listen: [{ address: '127.0.0.1:0' }], admin: { address: '127.0.0.1:0' }, access_log: { enabled: false }, shutdown_timeout: 2000, ...config }),
    { logger: pino({ level: 'silent' }), workers: 2 },
  );
  t.after(() => primary.stop(1000));
  const single = await startProxy(t, config);
  const workersUrl = `http://127.0.0.1:${primary.addresses[0]?.port}`;
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push((await requestFrom('127.0.0.2', `${workersUrl}/`)).status);
  for (let i = 0; i < 3; i++) codes.push((await requestFrom('127.0.0.2', `${single.url}/`)).status);
  assert.equal(codes.filter((c) => c === 200).length, 5, `statuses ${codes.join(' ')}`);
  assert.equal((await admin(primary.adminAddress?.port ?? 0, 'POST', '/bans/127.0.0.3?duration=10m')).status, 200);
  await waitFor(() => single.gatehouse.protection().state.bans.remaining('127.0.0.3') > 0, 1000, 'the ban on the other instance');
});

test('max_connections_per_client holds across instances; a closed connection frees its slot everywhere', { skip }, async (t) => {
  const redis = await startRedis(t);
  const [a, b, c] = (await cluster(t, redis, { protection: { max_connections_per_client: 2 } })) as [Instance, Instance, Instance];
  const first = await Connection.open(t, a.proxy.port, '127.0.0.9');
  assert.equal((await first.get('/')).status, 200);
  const second = await Connection.open(t, b.proxy.port, '127.0.0.9');
  assert.equal((await second.get('/')).status, 200);
  const third = await Connection.open(t, c.proxy.port, '127.0.0.9');
  await third.closed;
  assert.equal((await requestFrom('127.0.0.10', `${c.proxy.url}/`)).status, 200, 'another client connects');
  first.socket.destroy();
  await waitFor(
    async () => {
      const next = await Connection.open(t, c.proxy.port, '127.0.0.9');
      const answer = await next.get('/').catch(() => null);
      next.socket.destroy();
      return answer?.status === 200;
    },
    2000,
    'the slot freed on A to be usable on C',
  );
  const counters = (c.proxy.gatehouse.status() as { protection: Record<string, number> }).protection;
  assert.ok((counters['client_connection_limit'] ?? 0) >= 1);
});

test('IP list changes reach every instance: published when a file changes, taken up by an instance that starts later', { skip }, async (t) => {
  const redis = await startRedis(t);
  const client = new Redis(redis.url);
  t.after(() => client.disconnect());
  // The same path on every machine; here one file, made old, that the instances read at start.
  const file = await tempFile('deny.txt', '127.0.0.20\n');
  utimesSync(file, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  const backend = await startBackend(t, echo());
  const prefix = `lists${++prefixes}:`;
  const start = () =>
    startProxy(t, {
      upstreams: { app: { servers: [{ url: backend.url }] } },
      routes: [{ match: {}, upstream: 'app', access: { deny_file: file } }],
      state: { redis: { url: redis.url, key_prefix: prefix, timeout: '1s' } },
    });
  const a = await start();
  const status = async (proxy: RunningProxy, from: string): Promise<number> => (await requestFrom(from, `${proxy.url}/`)).status;
  assert.equal(await status(a, '127.0.0.20'), 403);
  assert.equal(await status(a, '127.0.0.21'), 200);
  // Another machine's copy changed: A uses it within a message's time, though its own file did not change.
  const changed = { path: file, text: '127.0.0.21\n', at: Date.now() };
  await client.publish(`${prefix}iplists`, JSON.stringify({ from: 'another-machine', payload: changed }));
  await client.set(`${prefix}iplist:${file}`, JSON.stringify(changed));
  const reloads = (proxy: RunningProxy): number =>
    (proxy.gatehouse.status() as { protection: { list_files: { reloads: number }[] } }).protection.list_files[0]?.reloads ?? 0;
  await waitFor(() => reloads(a) === 1, 1000, 'A to take the new list');
  assert.equal(await status(a, '127.0.0.21'), 403);
  assert.equal(await status(a, '127.0.0.20'), 200);
  // An instance that starts now takes the stored, newer list over its older file.
  const late = await start();
  await waitFor(async () => (await status(late, '127.0.0.21')) === 403, 3000, 'the late instance to take the stored list');
  // A change of the file itself is published and stored for the others.
  writeFileSync(file, '127.0.0.22\n');
  await waitFor(async () => JSON.parse((await client.get(`${prefix}iplist:${file}`)) ?? '{}').text === '127.0.0.22\n', 3000, 'the file change to be stored');
  await waitFor(async () => (await status(a, '127.0.0.22')) === 403 && (await status(late, '127.0.0.22')) === 403, 3000, 'both to deny it');
});

test('Redis trouble is logged once per transition, not per call, and the status says so', { skip }, async (t) => {
  const redis = await startRedis(t);
  const { logger, lines } = collectingLogger({ level: 'info' });
  const config = configFromObject({ listen: [{ address: '127.0.0.1:0' }], state: { redis: { url: redis.url, timeout: '100ms' } } }).state.redis;
  assert.ok(config !== undefined);
  await loadRedisClient();
  const state = new RedisState(config, logger);
  t.after(() => state.close());
  assert.ok(await state.whenAvailable(5000));
  await redis.kill();
  await waitFor(() => !state.available, 3000, 'degraded');
  // Many failing calls while degraded: no more lines.
  for (let i = 0; i < 20; i++) state.failed(new Error('call failed'));
  await redis.restart();
  await waitFor(() => state.available, 5000, 'recovered');
  const messages = lines.map((line) => line['msg']);
  assert.deepEqual(messages, ['redis connected: state shared', 'redis unavailable: shared state degraded to local state', 'redis available again: state shared']);
  const status = state.status();
  assert.equal(status['degraded'], false);
  assert.equal(status['degradations'], 1);
  assert.ok((status['failures'] as number) >= 20);
});
