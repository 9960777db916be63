import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin, type RawResponse } from '../helpers/cache.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy, type RunningProxy } from '../helpers/proxy.ts';

function collapsed(proxy: RunningProxy): number {
  const stats = proxy.gatehouse.caches().stats()['default'] as { collapsed: number };
  return stats.collapsed;
}

test('concurrent misses for one key cause one upstream request (request collapsing)', async (t) => {
  const held: ServerResponse[] = [];
  const origin = await startOrigin(t, (_req, res) => held.push(res));
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const N = 10;
  const all = Array.from({ length: N }, () => fetchRaw(`${proxy.url}/popular`));
  await waitFor(() => collapsed(proxy) === N - 1, 5000, 'the other requests to wait for the first');
  assert.equal(origin.count('/popular'), 1);
  const first = held[0] as ServerResponse;
  first.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
  first.end('one answer for all');
  const responses = await Promise.all(all);
  for (const res of responses) assert.equal(res.body.toString(), 'one answer for all');
  assert.equal(responses.filter((r) => cacheStatus(r) === 'gatehouse; fwd=uri-miss; collapsed').length, N - 1);
  assert.equal(origin.count('/popular'), 1);
});

test('an uncacheable answer releases the waiting requests upstream, and later misses are not collapsed', async (t) => {
  const held: ServerResponse[] = [];
  const origin = await startOrigin(t, (_req, res) => held.push(res));
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const answer = (res: ServerResponse): void => {
    res.writeHead(200, { 'cache-control': 'no-store' });
    res.end('personal');
  };
  const first = Array.from({ length: 4 }, () => fetchRaw(`${proxy.url}/private`));
  await waitFor(() => collapsed(proxy) === 3, 5000, 'collapsing');
  answer(held.shift() as ServerResponse);
  // Released, the three others go upstream on their own.
  await waitFor(() => held.length === 3, 5000, 'the released requests upstream');
  for (const res of held.splice(0)) answer(res);
  for (const res of await Promise.all(first)) assert.equal(res.body.toString(), 'personal');
  // Now known as uncacheable: concurrent requests all reach the origin at once.
  const later = Array.from({ length: 3 }, () => fetchRaw(`${proxy.url}/private`));
  await waitFor(() => held.length === 3, 5000, 'uncollapsed requests');
  for (const res of held.splice(0)) answer(res);
  await Promise.all(later);
  assert.equal(origin.count('/private'), 7);
  assert.equal(collapsed(proxy), 3);
});

test('a collapsed request waits at most lock_timeout, then goes upstream itself', async (t) => {
  const origin = await startOrigin(t, (_req, res, n) => {
    if (n === 1) return; // the first request hangs until the test ends
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('second');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url, { lock_timeout: '200ms' }));
  const hanging = fetchRaw(`${proxy.url}/slow`).catch(() => null);
  await waitFor(() => origin.count('/slow') === 1, 5000);
  const started = Date.now();
  const res = await fetchRaw(`${proxy.url}/slow`);
  assert.equal(res.body.toString(), 'second');
  assert.ok(Date.now() - started >= 190, 'it waited for the lock first');
  assert.ok(Date.now() - started < 2000, `and no longer than about lock_timeout (${Date.now() - started} ms)`);
  assert.equal(origin.count('/slow'), 2, 'then it went upstream itself');
  await proxy.gatehouse.stop(0);
  await hanging;
});

test('collapsed requests of another variant are not given the first one’s response', async (t) => {
  const held: ServerResponse[] = [];
  const origin = await startOrigin(t, (req, res) => {
    if (req.headers['accept-language'] === 'fr') {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
      res.end('bonjour');
      return;
    }
    held.push(res);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const en = fetchRaw(`${proxy.url}/greeting`, { 'accept-language': 'en' });
  await waitFor(() => held.length === 1, 5000);
  const fr = fetchRaw(`${proxy.url}/greeting`, { 'accept-language': 'fr' });
  await waitFor(() => collapsed(proxy) === 1, 5000);
  (held[0] as ServerResponse).writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
  (held[0] as ServerResponse).end('hello');
  const [enRes, frRes] = (await Promise.all([en, fr])) as [RawResponse, RawResponse];
  assert.equal(enRes.body.toString(), 'hello');
  assert.equal(frRes.body.toString(), 'bonjour');
});
