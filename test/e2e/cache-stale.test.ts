import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

test('stale-while-revalidate: the stale response is served at once and refreshed in the background (RFC 5861 §3)', async (t) => {
  let held: ServerResponse | null = null;
  const origin = await startOrigin(t, (_req, res, n) => {
    if (n === 1) {
      // Already stale when stored (Age past max-age), but within stale-while-revalidate.
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5', etag: '"v1"' });
      res.end('version 1');
      return;
    }
    // The background refresh waits until the test lets it answer.
    held = res;
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/swr`);
  const stale = await fetchRaw(`${proxy.url}/swr`);
  assert.equal(stale.body.toString(), 'version 1', 'answered while the refresh is still waiting on the origin');
  assert.match(cacheStatus(stale), /^gatehouse; hit; ttl=-\d+; detail=stale-while-revalidate$/);
  await waitFor(() => held !== null, 5000, 'the background revalidation');
  assert.equal(origin.seen[1]?.headers['if-none-match'], '"v1"', 'the refresh is a conditional request');
  const again = await fetchRaw(`${proxy.url}/swr`);
  assert.equal(again.body.toString(), 'version 1');
  assert.equal(origin.count('/swr'), 2, 'one refresh at a time');
  (held as ServerResponse | null)?.writeHead(200, { 'cache-control': 'max-age=3600', etag: '"v2"' });
  (held as ServerResponse | null)?.end('version 2');
  await waitFor(async () => (await fetchRaw(`${proxy.url}/swr`)).body.toString() === 'version 2', 5000, 'the refreshed entry');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/swr`)), 'gatehouse; hit');
});

test('a failed background refresh keeps the stale response', async (t) => {
  const origin = await startOrigin(t, (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5' });
      res.end('still good');
      return;
    }
    res.writeHead(503);
    res.end('down');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/f`);
  await fetchRaw(`${proxy.url}/f`);
  await waitFor(() => origin.count('/f') === 2, 5000, 'the refresh');
  await waitFor(() => proxy.gatehouse.caches().stats()['default'] !== undefined, 1000);
  // The origin having the refresh does not mean the proxy has handled its 503 yet. One refresh runs
  // at a time: once a stale hit starts a second one, the first is over, and every answer until
  // then (and after) must still be the stored response.
  await waitFor(
    async () => {
      const stale = await fetchRaw(`${proxy.url}/f`);
      assert.equal(stale.status, 200);
      assert.equal(stale.body.toString(), 'still good');
      assert.match(cacheStatus(stale), /^gatehouse; hit; ttl=-\d+; detail=stale-while-revalidate$/);
      return origin.count('/f') >= 3;
    },
    5000,
    'a second refresh, after the failed one',
  );
  const res = await fetchRaw(`${proxy.url}/f`);
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'still good');
});

test('stale-if-error: an error answer from the origin is replaced by the stale response (RFC 5861 §4)', async (t) => {
  const origin = await startOrigin(t, (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=600', etag: '"e"' });
      res.end('last good');
      return;
    }
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('origin error page');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/e`);
  const res = await fetchRaw(`${proxy.url}/e`);
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'last good');
  assert.match(cacheStatus(res), /^gatehouse; fwd=stale; fwd-status=503; detail=stale-if-error$/);
});

test('stale-if-error when the origin cannot be reached at all', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=600', etag: '"d"' });
    res.end('from before the outage');
  });
  const proxy = await startProxy(t, {
    ...cachingConfig(origin.url),
    upstreams: { app: { servers: [{ url: origin.url }], retries: { attempts: 1 }, outlier_detection: { enabled: false } } },
  });
  await fetchRaw(`${proxy.url}/d`);
  await origin.close();
  const res = await fetchRaw(`${proxy.url}/d`);
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'from before the outage');
  assert.equal(cacheStatus(res), 'gatehouse; fwd=stale; detail=stale-if-error');
});

test('past the stale-if-error window, or with must-revalidate, the error goes through', async (t) => {
  const origin = await startOrigin(t, (req, res, n) => {
    if (n === 1) {
      const headers: Record<string, string> =
        req.url === '/window' ? { 'cache-control': 'max-age=0, stale-if-error=10', age: '100' } : { 'cache-control': 'max-age=0, must-revalidate, stale-if-error=600' };
      res.writeHead(200, { ...headers, etag: '"w"' });
      res.end('old');
      return;
    }
    res.writeHead(502);
    res.end('bad gateway');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  for (const path of ['/window', '/must']) {
    await fetchRaw(`${proxy.url}${path}`);
    const res = await fetchRaw(`${proxy.url}${path}`);
    assert.equal(res.status, 502, path);
    assert.equal(res.body.toString(), 'bad gateway', `${path}: the origin's own answer`);
    assert.doesNotMatch(cacheStatus(res), /stale-if-error/, path);
  }
});

test('the configured stale_if_error applies when the response says nothing', async (t) => {
  const origin = await startOrigin(t, (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"c"' });
      res.end('configured');
      return;
    }
    res.writeHead(500);
    res.end();
  });
  const proxy = await startProxy(t, cachingConfig(origin.url, { stale_if_error: '10m' }));
  await fetchRaw(`${proxy.url}/c`);
  const res = await fetchRaw(`${proxy.url}/c`);
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'configured');
  assert.match(cacheStatus(res), /^gatehouse; fwd=stale; fwd-status=500; detail=stale-if-error$/);
  assert.equal(origin.count('/c'), 2, 'the origin was asked, and failed');
});
