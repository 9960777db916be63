/**
 * The dashboard's files and live feed over plain HTTP (the browser tests in test/browser/ drive the
 * page itself): content types, caching and CSP headers, and one JSON snapshot a second on /events.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { LiveFeed } from '../../src/admin/live.ts';
import { closedPort, echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { rawRequest, request, waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

test('the page and its files are served with their types, an ETag, no-cache and a strict CSP', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [{ url: backend.url }] } }, routes: [{ match: {}, upstream: 'app' }] });
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  const page = await request(`${admin}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['cache-control'], 'no-cache');
  assert.match(String(page.headers['content-security-policy']), /^default-src 'self';/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.match(page.body, /<script type="module" src="\.\/dashboard\.js"><\/script>/);
  assert.doesNotMatch(page.body, /https?:\/\//, 'nothing from the network');
  const dashboard = await request(`${admin}/dashboard`);
  assert.equal(dashboard.body, page.body);
  assert.equal(dashboard.headers.etag, page.headers.etag, 'one page, one ETag under both paths');
  assert.equal((await request(`${admin}/dashboard`, { headers: { 'if-none-match': String(page.headers.etag) } })).status, 304);
  const again = await request(`${admin}/`, { headers: { 'if-none-match': String(page.headers.etag) } });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  const script = await request(`${admin}/dashboard.js`);
  assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(script.headers['x-content-type-options'], 'nosniff');
  assert.equal((await request(`${admin}/dashboard.css`)).headers['content-type'], 'text/css; charset=utf-8');
  const head = await request(`${admin}/dashboard.css`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('GET /events sends a snapshot at once and then one a second: traffic, servers, errors', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      { name: 'broken', match: { path: '/boom' }, respond: { status: 502, body: 'no' } },
      { match: {}, upstream: 'app' },
    ],
  });
  for (let i = 0; i < 5; i++) await request(`${proxy.url}/`);
  await request(`${proxy.url}/boom`);
  const req = httpRequest(`http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}/events`);
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  t.after(() => res.destroy());
  assert.equal(res.headers['content-type'], 'text/event-stream');
  assert.equal(res.headers['cache-control'], 'no-store');
  res.setEncoding('utf8');
  const events: Snapshot[] = [];
  let buffer = '';
  for await (const chunk of res) {
    buffer += chunk as string;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.startsWith('data: ')) events.push(JSON.parse(block.slice(6)));
    }
    if (events.length >= 2) break;
  }
  const [first, second] = events as [Snapshot, Snapshot];
  assert.ok(Date.parse(second.time) > Date.parse(first.time), 'a new snapshot each time');
  const traffic = second.traffic;
  assert.equal(traffic.rps.length, 60);
  assert.equal(traffic.p99.length, 60);
  assert.equal(traffic.rps.reduce((a, b) => a + b, 0), 6, 'every request counted once, in its second');
  assert.ok(traffic.error_rate.some((r) => r !== null && r > 0), 'the 502 is an error');
  assert.equal(traffic.error_rate.reduce((sum: number, r, i) => sum + (r ?? 0) * (traffic.rps[i] ?? 0), 0), 1, 'one error among the six');
  // Latency percentiles in each second that had requests (none in the others), in order.
  for (let i = 0; i < 60; i++) {
    const [p50, p90, p99] = [traffic.p50[i], traffic.p90[i], traffic.p99[i]];
    if ((traffic.rps[i] ?? 0) === 0) assert.deepEqual([p50, p90, p99], [null, null, null], `second ${i}`);
    else assert.ok(p50 != null && p90 != null && p99 != null && p50 > 0 && p50 <= p90 && p90 <= p99, `second ${i}: ${p50} ${p90} ${p99}`);
  }
  assert.ok(traffic.now.p99 !== null && traffic.now.p99 > 0, 'the last seconds\' p99');
  assert.deepEqual(second.upstreams.map((u) => u.name), ['app']);
  assert.equal(second.upstreams[0]?.servers[0]?.url, backend.url);
  assert.equal(second.upstreams[0]?.servers[0]?.requests, 5);
  assert.equal(second.recent_errors.length, 1);
  assert.equal(second.recent_errors[0]?.status, 502);
  assert.equal(second.recent_errors[0]?.route, 'broken');
  assert.deepEqual(second.certificates, []);
});

/** The parts of a feed snapshot these tests read. */
interface Snapshot {
  time: string;
  traffic: { rps: number[]; p50: (number | null)[]; p90: (number | null)[]; p99: (number | null)[]; error_rate: (number | null)[]; now: { p99: number | null } };
  upstreams: { name: string; servers: { url: string; requests: number }[] }[];
  recent_errors: { status: number; route: string | null }[];
  certificates: unknown[];
}

test('GET /status lists each TLS listener\'s certificates with their expiry, and the feed the days left', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const notAfter = new Date(Date.now() + 5.5 * 86_400_000);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test', 'www.site.test'], notAfter }));
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    listen: [{ address: '127.0.0.1:0' }, { address: '127.0.0.1:0', tls: { certificates: [pair] } }],
    routes: [{ match: {}, respond: { status: 200, body: 'ok' } }],
  });
  const status = proxy.gatehouse.status() as { certificates: { listener: string; names: string[]; not_after: string }[] };
  const tlsPort = proxy.gatehouse.addresses[1]?.port;
  assert.deepEqual(status.certificates, [{ listener: `127.0.0.1:${tlsPort}`, names: ['site.test', 'www.site.test'], not_after: new Date(Math.floor(notAfter.getTime() / 1000) * 1000).toISOString() }]);
  const snapshot = (await new LiveFeed(proxy.gatehouse).snapshot()) as { certificates: { days_left: number }[] };
  assert.equal(snapshot.certificates[0]?.days_left, 5);
});

test('WebSocket handshakes count in the dashboard\'s figures as requests do: a refused one is a recent error', async (t) => {
  const dead = await closedPort();
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    upstreams: { gone: { servers: [{ url: `http://127.0.0.1:${dead}` }] } },
    routes: [{ name: 'socket', match: {}, upstream: 'gone' }],
  });
  const answer = await rawRequest(proxy.port, 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 502/);
  await waitFor(() => proxy.gatehouse.traffic().recentErrors.length === 1, 2000, 'the failed handshake among the recent errors');
  assert.equal(proxy.gatehouse.traffic().recentErrors[0]?.route, 'socket');
});

test('the feed\'s cache figures: the hit ratio overall and over the last snapshot, and its series', async (t) => {
  const backend = await startBackend(t, (_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('cached'));
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', cache: { enabled: true } }],
  });
  type Cache = { stores: number; hits: number; lookups: number; ratio: number | null; recent_ratio: number | null; series: (number | null)[] };
  const feed = new LiveFeed(proxy.gatehouse);
  const cacheOf = async (): Promise<Cache> => ((await feed.snapshot()) as { cache: Cache }).cache;
  assert.deepEqual(await cacheOf(), { stores: 1, hits: 0, lookups: 0, ratio: null, recent_ratio: null, series: [null] });
  await request(`${proxy.url}/a`);
  await request(`${proxy.url}/a`);
  assert.deepEqual(await cacheOf(), { stores: 1, hits: 1, lookups: 2, ratio: 0.5, recent_ratio: 0.5, series: [null, 0.5] });
  await request(`${proxy.url}/a`);
  assert.deepEqual(await cacheOf(), { stores: 1, hits: 2, lookups: 3, ratio: 2 / 3, recent_ratio: 1, series: [null, 0.5, 1] });
});
