/**
 * Rate limits per route (GCRA, like nginx's limit_req): keys by client, header, route or a
 * combination; 429 with Retry-After and the IETF RateLimit fields; delays instead of refusals;
 * bans for clients that keep breaking limits (visible and liftable on the admin API); state that
 * survives a reload; WebSocket handshakes counted too.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { errorOf as configErrorOf } from '../helpers/config.ts';
import { admin, Connection, rawFrom, requestFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { protectionCounters, startProxy } from '../helpers/proxy.ts';

type Routes = ConfigInput['routes'];

async function proxyWith(t: TestContext, routes: (app: string) => Routes, extra: Partial<ConfigInput> = {}) {
  const backend = await startBackend(t, echo());
  const config = {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: routes('app'),
    ...extra,
  };
  const proxy = await startProxy(t, config);
  return { backend, proxy, config, adminPort: proxy.gatehouse.adminAddress?.port ?? 0 };
}

const statuses = async (n: number, from: string, url: string, headers: Record<string, string> = {}): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await requestFrom(from, url, { headers })).status);
  return out;
};

test('per client: burst + 1 pass, then 429 with Retry-After, RateLimit and RateLimit-Policy; other clients unaffected', async (t) => {
  const { backend, proxy } = await proxyWith(t, (app) => [
    { name: 'api', match: {}, upstream: app, rate_limits: [{ name: 'per-ip', rate: '1/s', burst: 2 }] },
  ]);
  assert.deepEqual(await statuses(3, '127.0.0.2', `${proxy.url}/`), [200, 200, 200]);
  const refused = await requestFrom('127.0.0.2', `${proxy.url}/`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(refused.headers['ratelimit-policy'], '"per-ip";q=3;w=3');
  assert.equal(refused.headers['ratelimit'], '"per-ip";r=0;t=1');
  assert.equal(refused.body, '429 Too Many Requests\n');
  assert.deepEqual(await statuses(3, '127.0.0.3', `${proxy.url}/`), [200, 200, 200]);
  assert.equal(backend.requests.length, 6);
  assert.equal(protectionCounters(proxy).rate_limited, 1);
  // One interval later, one more request fits.
  await waitFor(async () => (await requestFrom('127.0.0.2', `${proxy.url}/`)).status === 200, 3000, 'the bucket to refill');
});

test('keyed by a header: each key has its own bucket, and a request without it is not counted', async (t) => {
  const { proxy } = await proxyWith(t, (app) => [
    { match: {}, upstream: app, rate_limits: [{ key: ['header:X-Api-Key'], rate: '1/m', burst: 1 }] },
  ]);
  const url = `${proxy.url}/`;
  assert.deepEqual(await statuses(3, '127.0.0.2', url, { 'x-api-key': 'alpha' }), [200, 200, 429]);
  assert.deepEqual(await statuses(2, '127.0.0.3', url, { 'x-api-key': 'alpha' }), [429, 429], 'the key, not the address, counts');
  assert.deepEqual(await statuses(2, '127.0.0.2', url, { 'x-api-key': 'beta' }), [200, 200]);
  assert.deepEqual(await statuses(4, '127.0.0.2', url), [200, 200, 200, 200]);
  const long = 'k'.repeat(5000);
  assert.deepEqual(await statuses(3, '127.0.0.2', url, { 'x-api-key': long }), [200, 200, 429], 'long values are keyed by their hash');
});

test('keyed by route (shared by all clients), and several limits on one route all apply', async (t) => {
  const { proxy } = await proxyWith(t, (app) => [
    {
      name: 'search',
      match: { path: '/search' },
      upstream: app,
      rate_limits: [
        { name: 'per-ip', key: ['ip'], rate: '1/m', burst: 1 },
        { name: 'total', key: ['route'], rate: '1/m', burst: 3 },
      ],
    },
    { name: 'other', match: {}, upstream: app, rate_limits: [{ key: ['route'], rate: '1/m', burst: 0 }] },
  ]);
  const search = `${proxy.url}/search`;
  assert.deepEqual(await statuses(3, '127.0.0.2', search), [200, 200, 429], 'per-ip');
  const third = await requestFrom('127.0.0.3', search);
  assert.equal(third.status, 200);
  // A request refused by an earlier limit is not charged to later ones: "total" has counted 3.
  assert.equal((await requestFrom('127.0.0.4', search)).status, 200);
  const fifth = await requestFrom('127.0.0.5', search);
  assert.equal(fifth.status, 429, 'the route-wide limit');
  assert.equal(fifth.headers['ratelimit-policy'], '"total";q=4;w=240');
  assert.deepEqual(await statuses(2, '127.0.0.6', `${proxy.url}/x`), [200, 429]);
  assert.deepEqual(await statuses(1, '127.0.0.7', `${proxy.url}/x`), [429], 'a route key is shared');
});

test('response_headers: allowed answers carry RateLimit and RateLimit-Policy too', async (t) => {
  const { proxy } = await proxyWith(t, (app) => [
    {
      match: {},
      upstream: app,
      rate_limits: [
        { name: 'a', rate: '10/s', burst: 4, response_headers: true },
        { name: 'b', key: ['route'], rate: '100/m', burst: 99, response_headers: true },
      ],
    },
  ]);
  const res = await requestFrom('127.0.0.2', `${proxy.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['ratelimit'], '"a";r=4;t=1, "b";r=99;t=1');
  assert.equal(res.headers['ratelimit-policy'], '"a";q=5;w=1, "b";q=100;w=60');
});

test('delay_after: requests past it within the burst are held back to the rate, not refused', async (t) => {
  const { backend, proxy } = await proxyWith(t, (app) => [
    { match: {}, upstream: app, rate_limits: [{ rate: '20/s', burst: 5, delay_after: 1 }] },
  ]);
  const arrivals: number[] = [];
  backend.server.on('request', () => arrivals.push(performance.now()));
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: 6 }, () => requestFrom('127.0.0.2', `${proxy.url}/`)));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  const spread = Math.max(...arrivals) - started;
  // Two pass at once; the other four wait 50, 100, 150 and 200 ms.
  assert.ok(spread >= 180, `the backend saw them over ${spread.toFixed(0)} ms`);
  assert.equal(protectionCounters(proxy).rate_delayed, 4);
  assert.equal((await requestFrom('127.0.0.2', `${proxy.url}/`)).status, 200, 'no longer ahead once they went through');
});

test('bans: a client that keeps breaking limits is shut out at accept for a growing time, listed and liftable on the admin API', async (t) => {
  const { backend, proxy, adminPort } = await proxyWith(
    t,
    (app) => [{ match: {}, upstream: app, rate_limits: [{ rate: '1/m', burst: 0 }] }],
    { protection: { bans: { enabled: true, threshold: 3, window: '1m', duration: '2s', factor: 3 } } },
  );
  const url = `${proxy.url}/`;
  assert.deepEqual(await statuses(3, '127.0.0.2', url), [200, 429, 429]);
  const banning = await requestFrom('127.0.0.2', url);
  assert.equal(banning.status, 429);
  assert.equal(banning.headers['connection'], 'close');
  assert.equal(await rawFrom('127.0.0.2', proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), '', 'closed at accept');
  assert.equal((await requestFrom('127.0.0.3', url)).status, 200, 'others are served');
  const listed = (await admin(adminPort, 'GET', '/bans')).body as { bans: { client: string; reason: string; level: number; remaining_s: number }[] };
  assert.deepEqual(listed.bans.map((b) => [b.client, b.reason, b.level]), [['127.0.0.2', 'rate_limit', 1]]);
  assert.ok((listed.bans[0]?.remaining_s ?? 0) <= 2);
  // The ban ends by itself...
  await waitFor(async () => (await rawFrom('127.0.0.2', proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')) !== '', 5000, 'the ban to end');
  // ...and the next one lasts three times as long (the request that saw the ban end was the first
  // new violation: two more start it).
  for (let i = 0; i < 2; i++) assert.equal((await requestFrom('127.0.0.2', url)).status, 429);
  const again = (await admin(adminPort, 'GET', '/bans')).body as { bans: { level: number; remaining_s: number }[] };
  assert.equal(again.bans[0]?.level, 2);
  assert.ok((again.bans[0]?.remaining_s ?? 0) > 4, `second ban: ${again.bans[0]?.remaining_s} s`);
  assert.deepEqual((await admin(adminPort, 'DELETE', '/bans/127.0.0.2')).body, { lifted: '127.0.0.2' });
  assert.equal((await admin(adminPort, 'DELETE', '/bans/127.0.0.2')).status, 404);
  assert.notEqual(await rawFrom('127.0.0.2', proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), '', 'lifted');
  const counted = protectionCounters(proxy);
  assert.ok((counted.banned_connections ?? 0) >= 1);
  assert.equal(backend.requests.length >= 2, true);
  // 1/m without burst: one request of each client passed; refused, banned and closed ones sent nothing on.
  assert.equal(backend.requests.length, 2);
});

test('bans: a banned client\'s open keep-alive connection is refused too; manual bans from the admin API', async (t) => {
  const { proxy, adminPort } = await proxyWith(t, (app) => [{ match: {}, upstream: app }], { protection: { bans: { enabled: true } } });
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  assert.equal((await conn.get('/')).status, 200);
  const answer = (await admin(adminPort, 'POST', '/bans/127.0.0.2?duration=10m')).body as Record<string, unknown>;
  assert.deepEqual({ ...answer, until: undefined }, { banned: '127.0.0.2', duration_s: 600, until: undefined });
  const until = Date.parse(String(answer.until));
  assert.ok(Math.abs(until - (Date.now() + 600_000)) < 5000, `until ${String(answer.until)} is ten minutes away`);
  const refused = await conn.get('/');
  assert.equal(refused.status, 429);
  assert.match(refused.head, /\r\nretry-after: (599|600)\r\n/);
  await conn.closed;
  assert.equal((await admin(adminPort, 'POST', '/bans/nope')).status, 400);
  assert.deepEqual((await admin(adminPort, 'DELETE', '/bans')).body, { lifted: 1 });
  assert.equal((await requestFrom('127.0.0.2', `${proxy.url}/`)).status, 200);
});

test('a ban made through the admin API holds at once on every route, with automatic bans off', async (t) => {
  const { proxy, adminPort } = await proxyWith(t, (app) => [
    { match: { path: '/a' }, upstream: app },
    { match: {}, upstream: app },
  ]);
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  assert.equal((await conn.get('/a')).status, 200);
  assert.equal((await admin(adminPort, 'POST', '/bans/127.0.0.2?duration=1m')).status, 200);
  assert.equal((await conn.get('/a')).status, 429, 'the open keep-alive connection is refused');
  await conn.closed;
  assert.equal(await rawFrom('127.0.0.2', proxy.port, 'GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), '', 'a new connection is closed at accept');
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/b`)).status, 200, 'other clients pass');
  const listed = (await admin(adminPort, 'GET', '/bans')).body as { bans: { client: string; remaining_s: number }[] };
  assert.equal(listed.bans[0]?.client, '127.0.0.2');
  assert.ok((listed.bans[0]?.remaining_s ?? 0) > 50);
  assert.deepEqual((await admin(adminPort, 'DELETE', '/bans/127.0.0.2')).body, { lifted: '127.0.0.2' });
  assert.equal((await requestFrom('127.0.0.2', `${proxy.url}/b`)).status, 200);
});

test('limits and bans survive a reload by route and limit name; a renamed limit starts afresh', async (t) => {
  const { proxy, config } = await proxyWith(t, (app) => [
    { name: 'api', match: {}, upstream: app, rate_limits: [{ name: 'slow', rate: '1/m', burst: 1 }] },
  ]);
  const url = `${proxy.url}/`;
  assert.deepEqual(await statuses(3, '127.0.0.2', url), [200, 200, 429]);
  await proxy.gatehouse.reload(configFromObject({ ...config, listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, limits: { keepalive_timeout: '4s' } }));
  assert.deepEqual(await statuses(1, '127.0.0.2', url), [429], 'still limited after the reload');
  const renamed = { ...config, routes: [{ name: 'api', match: {}, upstream: 'app', rate_limits: [{ name: 'fresh', rate: '1/m', burst: 1 }] }] };
  await proxy.gatehouse.reload(configFromObject({ ...renamed, listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false } }));
  assert.deepEqual(await statuses(3, '127.0.0.2', url), [200, 200, 429]);
});

test('WebSocket handshakes go through the route\'s access rules and rate limits', async (t) => {
  const { proxy } = await proxyWith(t, (app) => [
    { match: { path: '/ws' }, upstream: app, rate_limits: [{ rate: '1/m', burst: 0 }], access: { deny: ['127.0.0.9'] } },
  ]);
  const handshake =
    'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  assert.match(await rawFrom('127.0.0.9', proxy.port, handshake), /^HTTP\/1\.1 403 /);
  // The echo backend does not speak WebSocket: it answers 200, which shows the handshake got through.
  assert.match(await rawFrom('127.0.0.2', proxy.port, handshake, 1000), /^HTTP\/1\.1 200 /);
  assert.match(await rawFrom('127.0.0.2', proxy.port, handshake), /^HTTP\/1\.1 429 /);
  // Any other upgrade is served as a plain request (RFC 9113 §3.1), counted by the same limit.
  assert.match(await rawFrom('127.0.0.3', proxy.port, handshake.replace('websocket', 'h2c'), 1000), /^HTTP\/1\.1 200 /, 'only WebSocket is tunnelled');
  assert.match(await rawFrom('127.0.0.3', proxy.port, handshake.replace('websocket', 'h2c')), /^HTTP\/1\.1 429 /);
});

test('rate limit configuration errors are clear', () => {
  const base = { listen: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: [{ url: 'http://127.0.0.1:1' }] } } };
  const config = (limits: unknown[]) => ({ ...base, routes: [{ upstream: 'app', rate_limits: limits }] });
  // JSON is YAML: the configuration is parsed as a file would be.
  const errorOf = (limits: unknown[]): string => configErrorOf(JSON.stringify(config(limits)));
  assert.match(errorOf([{ rate: '10 per second' }]), /routes\[0\]\.rate_limits\[0\]\.rate: "10 per second" is not a rate \(use e\.g\. 10\/s, 600\/m, 5000\/h or 5\/10s\)/);
  assert.match(errorOf([{ rate: '10/s', key: ['cookie:x'] }]), /rate_limits\[0\]\.key\[0\]: must be ip, route or header:<name>/);
  assert.match(errorOf([{ rate: '1/s' }, { rate: '2/s' }, { name: 'limit-0', rate: '3/s' }]), /rate_limits\[2\]\.name: duplicate limit name "limit-0"/);
  assert.doesNotThrow(() => configFromObject(config([{ rate: '5/10s', burst: 3, delay_after: 1 }]) as ConfigInput));
});
