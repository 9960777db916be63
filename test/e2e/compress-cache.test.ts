import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, decoded, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { request } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

const TEXT = '{"items":[' + Array.from({ length: 300 }, (_, i) => `{"id":${i},"name":"item ${i}"}`).join(',') + ']}';

function both(url: string) {
  return {
    upstreams: { app: { servers: [{ url }] } },
    routes: [{ match: {}, upstream: 'app', cache: true, compress: true }],
  };
}

test('compressed variants are cached: each encoding is compressed once, then served from the store', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600', etag: '"j1"' });
    res.end(TEXT);
  });
  const proxy = await startProxy(t, both(origin.url));
  const ask = (accept?: string) => fetchRaw(`${proxy.url}/items`, accept === undefined ? {} : { 'accept-encoding': accept });

  const gzipMiss = await ask('gzip');
  assert.equal(gzipMiss.headers['content-encoding'], 'gzip');
  assert.equal(cacheStatus(gzipMiss), 'gatehouse; fwd=uri-miss; stored');
  const gzipHit = await ask('GZIP;q=1.0');
  assert.equal(cacheStatus(gzipHit), 'gatehouse; hit', 'same acceptable set, same variant');
  assert.equal(gzipHit.headers['content-encoding'], 'gzip');
  assert.equal(gzipHit.headers['content-length'], String(gzipHit.body.length), 'the stored compressed size');
  assert.ok(gzipHit.body.equals(gzipMiss.body), 'the stored bytes, not compressed again');
  assert.equal(decoded(gzipHit), TEXT);

  const brMiss = await ask('br, gzip');
  assert.equal(brMiss.headers['content-encoding'], 'br');
  assert.equal(cacheStatus(brMiss), 'gatehouse; fwd=vary-miss; stored');
  assert.equal(cacheStatus(await ask('gzip,br')), 'gatehouse; hit');

  const plain = await ask();
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(cacheStatus(plain), 'gatehouse; fwd=vary-miss; stored');
  const plainHit = await ask();
  assert.equal(cacheStatus(plainHit), 'gatehouse; hit');
  assert.equal(plainHit.body.toString(), TEXT);
  assert.equal(plainHit.headers['etag'], '"j1"', 'the identity variant keeps its strong ETag');

  assert.equal(origin.count('/items'), 3, 'one origin request per variant');
  assert.equal(gzipHit.headers['vary'], 'Accept-Encoding');
});

test('a compressed variant is revalidated with its weak ETag and keeps it after a 304', async (t) => {
  const origin = await startOrigin(t, (req, res, n) => {
    if (n > 1) {
      assert.equal(req.headers['if-none-match'], 'W/"z"');
      res.writeHead(304, { etag: '"z"', 'cache-control': 'max-age=600' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=0', etag: '"z"' });
    res.end(TEXT);
  });
  const proxy = await startProxy(t, both(origin.url));
  await fetchRaw(`${proxy.url}/z`, { 'accept-encoding': 'gzip' });
  const revalidated = await fetchRaw(`${proxy.url}/z`, { 'accept-encoding': 'gzip' });
  assert.equal(cacheStatus(revalidated), 'gatehouse; fwd=stale; fwd-status=304');
  assert.equal(revalidated.headers['etag'], 'W/"z"');
  assert.equal(revalidated.headers['content-encoding'], 'gzip');
  assert.equal(decoded(revalidated), TEXT);
  const hit = await fetchRaw(`${proxy.url}/z`, { 'accept-encoding': 'gzip', 'if-none-match': 'W/"z"' });
  assert.equal(hit.status, 304);
});

test('trailers pass through the cache on a miss (filters in the chain)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum', 'cache-control': 'max-age=60' });
    res.write('data');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
  });
  const proxy = await startProxy(t, both(origin.url));
  const res = await request(`${proxy.url}/`, { headers: { te: 'trailers', 'accept-encoding': 'gzip' } });
  assert.equal(res.body, 'data');
  assert.equal(res.trailers['x-checksum'], 'abc123');
});
