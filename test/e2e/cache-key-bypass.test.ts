import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

const cacheable = (body: (url: string) => string = (url) => url) =>
  (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(body(req.url ?? ''));
  };

test('query parameters can be ignored, sorted, or left out of the key', async (t) => {
  const origin = await startOrigin(t, cacheable());
  const proxy = await startProxy(t, cachingConfig(origin.url, { key: { ignore_query: ['utm_source', 'fbclid'], sort_query: true } }));
  await fetchRaw(`${proxy.url}/p?b=2&a=1&utm_source=mail`);
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/p?a=1&b=2`)), 'gatehouse; hit');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/p?fbclid=x&a=1&b=2&utm_source=web`)), 'gatehouse; hit');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/p?a=1&b=3`)), 'gatehouse; fwd=uri-miss; stored');
  const noQuery = await startProxy(t, cachingConfig(origin.url, { key: { query: false } }));
  await fetchRaw(`${noQuery.url}/q?x=1`);
  assert.equal(cacheStatus(await fetchRaw(`${noQuery.url}/q?x=2`)), 'gatehouse; hit');
});

test('the host is part of the key unless key.host is false', async (t) => {
  const origin = await startOrigin(t, cacheable());
  const withHost = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${withHost.url}/h`, { host: 'one.example' });
  assert.equal(cacheStatus(await fetchRaw(`${withHost.url}/h`, { host: 'two.example' })), 'gatehouse; fwd=uri-miss; stored');
  assert.equal(cacheStatus(await fetchRaw(`${withHost.url}/h`, { host: 'ONE.example' })), 'gatehouse; hit');
  const without = await startProxy(t, cachingConfig(origin.url, { key: { host: false } }));
  await fetchRaw(`${without.url}/h`, { host: 'one.example' });
  assert.equal(cacheStatus(await fetchRaw(`${without.url}/h`, { host: 'two.example' })), 'gatehouse; hit');
});

test('bypass rules: a request with the header, cookie or query parameter skips the cache', async (t) => {
  const origin = await startOrigin(t, cacheable());
  const proxy = await startProxy(t, cachingConfig(origin.url, { bypass: { headers: ['X-Preview'], cookies: ['session'], query: ['nocache'] } }));
  await fetchRaw(`${proxy.url}/b`);
  for (const [path, headers] of [
    ['/b', { 'x-preview': '1' }],
    ['/b', { cookie: 'theme=dark; session=abc' }],
    ['/b?nocache=1', {}],
  ] as const) {
    const res = await fetchRaw(`${proxy.url}${path}`, headers);
    assert.equal(cacheStatus(res), 'gatehouse; fwd=bypass', JSON.stringify(headers));
  }
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/b`, { cookie: 'session=' })), 'gatehouse; hit', 'an empty cookie does not bypass');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/b?nocache=1`)), 'gatehouse; fwd=bypass', 'nor is a bypassed response stored');
});

test('routes naming the same store share its entries; another store is separate; a route may opt out', async (t) => {
  const origin = await startOrigin(t, cacheable(() => 'shared'));
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: origin.url }] } },
    cache: { enabled: true, stores: { other: { type: 'memory', max_size: '1mb' } } },
    routes: [
      { match: { headers: { 'x-route': 'a' } }, upstream: 'app' },
      { match: { headers: { 'x-route': 'b' } }, upstream: 'app', cache: { store: 'default', stale_if_error: '1m' } },
      { match: { headers: { 'x-route': 'c' } }, upstream: 'app', cache: { store: 'other' } },
      { match: { headers: { 'x-route': 'off' } }, upstream: 'app', cache: false },
    ],
  });
  await fetchRaw(`${proxy.url}/s`, { 'x-route': 'a' });
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/s`, { 'x-route': 'b' })), 'gatehouse; hit');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/s`, { 'x-route': 'c' })), 'gatehouse; fwd=uri-miss; stored');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/s`, { 'x-route': 'off' })), '');
  assert.deepEqual(Object.keys(proxy.gatehouse.caches().stats()).sort(), ['default', 'other']);
});

test('configuration errors point at the problem', () => {
  const base = 'listen: [{ address: "127.0.0.1:0" }]\nupstreams: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }\n';
  const problem = (text: string): string => {
    try {
      parseConfigText(base + text, 'g.yaml');
    } catch (error: unknown) {
      return (error as Error).message;
    }
    return 'no error';
  };
  assert.match(problem('routes: [{ upstream: app, cache: { store: nope } }]'), /routes\[0\]\.cache\.store: no cache store named "nope" \(known: default\)/);
  assert.match(problem('cache: { stores: { d: { type: disk } } }'), /cache\.stores\.d\.path: a disk store needs a path/);
  assert.match(problem('cache: { stores: { m: { type: memory, path: /tmp/x } } }'), /only a disk store has a path/);
  assert.match(problem('routes: [{ respond: { status: 200 }, cache: true }]'), /routes\[0\]\.cache: caching applies to routes that forward/);
  assert.match(problem('routes: [{ upstream: app, compress: { encodings: [gzip, gzip] } }]'), /lists an encoding twice/);
  assert.match(problem('compress: { level: { gzip: 12 } }'), /compress\.level\.gzip/);
  assert.match(problem('routes: [{ upstream: app, cache: { lock_timeout: soon } }]'), /"soon" is not a duration/);
  assert.equal(problem('cache: { enabled: true }\nroutes: [{ upstream: app }, { respond: { status: 200 } }]'), 'no error', 'global enabled skips routes that do not forward');
});
