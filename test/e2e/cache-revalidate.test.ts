import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

const LAST_MODIFIED = new Date(Date.now() - 86_400_000).toUTCString();

test('a stale response is revalidated with its validators; a 304 freshens the stored headers (RFC 9111 §4.3)', async (t) => {
  const origin = await startOrigin(t, (req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v1"', 'last-modified': LAST_MODIFIED, 'x-version': '1', 'content-type': 'text/plain' });
      res.end('body v1');
      return;
    }
    assert.equal(req.headers['if-none-match'], '"v1"');
    assert.equal(req.headers['if-modified-since'], LAST_MODIFIED);
    // The second 304 makes the entry fresh for a while.
    res.writeHead(304, { etag: '"v1"', 'x-version': String(n), 'cache-control': n === 2 ? 'max-age=0' : 'max-age=3600' });
    res.end();
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/r`);
  const second = await fetchRaw(`${proxy.url}/r`);
  assert.equal(second.status, 200);
  assert.equal(second.body.toString(), 'body v1');
  assert.equal(cacheStatus(second), 'gatehouse; fwd=stale; fwd-status=304');
  assert.equal(second.headers['x-version'], '2', 'the 304 updated the stored headers');
  assert.equal(second.headers['content-type'], 'text/plain', 'fields the 304 did not carry are kept');
  const third = await fetchRaw(`${proxy.url}/r`);
  assert.equal(third.headers['x-version'], '3');
  const fourth = await fetchRaw(`${proxy.url}/r`);
  assert.equal(cacheStatus(fourth), 'gatehouse; hit', 'fresh after a 304 with max-age');
  assert.equal(origin.count('/r'), 3);
});

test('a changed resource (200 on revalidation) replaces the stored response', async (t) => {
  const origin = await startOrigin(t, (_req, res, n) => {
    res.writeHead(200, { 'cache-control': n === 1 ? 'max-age=0' : 'max-age=60', etag: `"v${n}"` });
    res.end(`version ${n}`);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/c`);
  const changed = await fetchRaw(`${proxy.url}/c`);
  assert.equal(changed.body.toString(), 'version 2');
  assert.equal(cacheStatus(changed), 'gatehouse; fwd=stale; fwd-status=200; stored');
  const hit = await fetchRaw(`${proxy.url}/c`);
  assert.equal(hit.body.toString(), 'version 2');
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
});

test("the client's conditional requests are answered from the cache: 304, or 412 for a failed If-Match", async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"abc"', 'last-modified': LAST_MODIFIED, 'content-type': 'text/plain', vary: 'Accept' });
    res.end('content');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/x`);
  const inm = await fetchRaw(`${proxy.url}/x`, { 'if-none-match': 'W/"abc"' });
  assert.equal(inm.status, 304);
  assert.equal(inm.body.length, 0);
  assert.equal(inm.headers['etag'], '"abc"');
  assert.equal(inm.headers['vary'], 'Accept', 'a 304 carries the fields that guide caches');
  assert.equal(inm.headers['content-type'], undefined);
  assert.equal(cacheStatus(inm), 'gatehouse; hit');
  const ims = await fetchRaw(`${proxy.url}/x`, { 'if-modified-since': new Date().toUTCString() });
  assert.equal(ims.status, 304);
  const changedSince = await fetchRaw(`${proxy.url}/x`, { 'if-modified-since': new Date(Date.now() - 10 * 86_400_000).toUTCString() });
  assert.equal(changedSince.status, 200);
  const otherTag = await fetchRaw(`${proxy.url}/x`, { 'if-none-match': '"other"' });
  assert.equal(otherTag.status, 200);
  const ifMatch = await fetchRaw(`${proxy.url}/x`, { 'if-match': '"other"' });
  assert.equal(ifMatch.status, 412);
  assert.equal(origin.count('/x'), 1);
});

test("on a miss the client's conditional is answered after fetching the whole response, which is stored", async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    assert.equal(req.headers['if-none-match'], undefined, 'the origin is asked for the whole response');
    assert.equal(req.headers['range'], undefined);
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"abc"' });
    res.end('content');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const first = await fetchRaw(`${proxy.url}/m`, { 'if-none-match': '"abc"' });
  assert.equal(first.status, 304);
  assert.equal(cacheStatus(first), 'gatehouse; fwd=uri-miss; stored');
  const hit = await fetchRaw(`${proxy.url}/m`);
  assert.equal(hit.body.toString(), 'content');
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
});

test('no-cache responses are validated on every use; must-revalidate ones once stale', async (t) => {
  const origin = await startOrigin(t, (req, res, n) => {
    const cc = req.url === '/no-cache' ? 'max-age=3600, no-cache' : 'max-age=0, must-revalidate, stale-while-revalidate=60';
    if (n > 1 && req.headers['if-none-match'] === '"t"') {
      res.writeHead(304, { etag: '"t"', 'cache-control': cc });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': cc, etag: '"t"' });
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  for (const path of ['/no-cache', '/must']) {
    for (let i = 0; i < 3; i++) await fetchRaw(`${proxy.url}${path}`);
    assert.equal(origin.count(path), 3, path);
    assert.equal(cacheStatus(await fetchRaw(`${proxy.url}${path}`)), 'gatehouse; fwd=stale; fwd-status=304', path);
  }
});

test("the request's Cache-Control: no-cache and max-age=0 force revalidation; request_cache_control: false ignores them", async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.headers['if-none-match'] === '"q"') {
      res.writeHead(304, { etag: '"q"' });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=3600', etag: '"q"' });
    res.end('x');
  });
  const honouring = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${honouring.url}/q`);
  for (const cc of ['no-cache', 'max-age=0']) {
    assert.equal(cacheStatus(await fetchRaw(`${honouring.url}/q`, { 'cache-control': cc })), 'gatehouse; fwd=request; fwd-status=304', cc);
  }
  assert.match(cacheStatus(await fetchRaw(`${honouring.url}/q`, { 'cache-control': 'max-age=3600' })), /^gatehouse; hit; ttl=\d+$/);
  const ignoring = await startProxy(t, cachingConfig(origin.url, { request_cache_control: false }));
  await fetchRaw(`${ignoring.url}/q2`);
  assert.equal(cacheStatus(await fetchRaw(`${ignoring.url}/q2`, { 'cache-control': 'no-cache' })), 'gatehouse; hit');
});

test('only-if-cached: 504 when nothing usable is stored (RFC 9111 §5.2.1.7)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const none = await fetchRaw(`${proxy.url}/o`, { 'cache-control': 'only-if-cached' });
  assert.equal(none.status, 504);
  assert.equal(origin.count('/o'), 0);
  await fetchRaw(`${proxy.url}/o`);
  const stored = await fetchRaw(`${proxy.url}/o`, { 'cache-control': 'only-if-cached' });
  assert.equal(stored.status, 200);
  assert.equal(origin.count('/o'), 1);
});

test('max-stale accepts a stale response without asking the origin', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=10', age: '20', etag: '"s"' });
    res.end('stale but fine');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/s`);
  const res = await fetchRaw(`${proxy.url}/s`, { 'cache-control': 'max-stale=60' });
  assert.equal(res.body.toString(), 'stale but fine');
  assert.match(cacheStatus(res), /^gatehouse; hit; ttl=-\d+; detail=max-stale$/);
  assert.equal(origin.count('/s'), 1);
});
