import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

test('Vary on several headers: one entry per combination, values normalised (RFC 9111 §4.1)', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language, X-Tenant' });
    res.end(`${String(req.headers['accept-language'])}/${String(req.headers['x-tenant'])}`);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const get = (lang: string, tenant?: string) =>
    fetchRaw(`${proxy.url}/v`, { 'accept-language': lang, ...(tenant === undefined ? {} : { 'x-tenant': tenant }) });
  assert.equal(cacheStatus(await get('en-US, fr;q=0.5', 'a')), 'gatehouse; fwd=uri-miss; stored');
  const same = await get('EN-us,fr ; q=0.5', 'a');
  assert.equal(cacheStatus(same), 'gatehouse; hit', 'case and spaces do not make a new variant');
  assert.equal(same.body.toString(), 'en-US, fr;q=0.5/a');
  assert.equal(cacheStatus(await get('en-US, fr;q=0.5', 'b')), 'gatehouse; fwd=vary-miss; stored');
  assert.equal(cacheStatus(await get('en-US, fr;q=0.5')), 'gatehouse; fwd=vary-miss; stored', 'an absent header is a value of its own');
  assert.equal((await get('en-US, fr;q=0.5', 'b')).body.toString(), 'en-US, fr;q=0.5/b');
  assert.equal((await get('en-US, fr;q=0.5')).body.toString(), 'en-US, fr;q=0.5/undefined');
  assert.equal(origin.count('/v'), 3);
});

test('key.headers select entries as if the origin had sent Vary with them', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end(String(req.headers['x-device']));
  });
  const proxy = await startProxy(t, cachingConfig(origin.url, { key: { headers: ['X-Device'] } }));
  await fetchRaw(`${proxy.url}/k`, { 'x-device': 'mobile' });
  await fetchRaw(`${proxy.url}/k`, { 'x-device': 'desktop' });
  assert.equal((await fetchRaw(`${proxy.url}/k`, { 'x-device': 'mobile' })).body.toString(), 'mobile');
  assert.equal((await fetchRaw(`${proxy.url}/k`, { 'x-device': 'desktop' })).body.toString(), 'desktop');
  assert.equal(origin.count('/k'), 2);
});

test('a byte range of a stored response is served from the store (RFC 9110 §14)', async (t) => {
  const body = 'abcdefghijklmnopqrstuvwxyz';
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"alpha"', 'accept-ranges': 'bytes', 'content-type': 'text/plain' });
    res.end(body);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/r`);
  const cases: [string, string, string][] = [
    ['bytes=0-4', 'abcde', 'bytes 0-4/26'],
    ['bytes=20-', 'uvwxyz', 'bytes 20-25/26'],
    ['bytes=-3', 'xyz', 'bytes 23-25/26'],
    ['bytes=10-1000', 'klmnopqrstuvwxyz', 'bytes 10-25/26'],
  ];
  for (const [range, expected, contentRange] of cases) {
    const res = await fetchRaw(`${proxy.url}/r`, { range });
    assert.equal(res.status, 206, range);
    assert.equal(res.body.toString(), expected, range);
    assert.equal(res.headers['content-range'], contentRange);
    assert.equal(res.headers['content-length'], String(expected.length));
    assert.equal(cacheStatus(res), 'gatehouse; hit');
  }
  const unsatisfiable = await fetchRaw(`${proxy.url}/r`, { range: 'bytes=26-' });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers['content-range'], 'bytes */26');
  assert.equal((await fetchRaw(`${proxy.url}/r`, { range: 'bytes=0-1,4-5' })).status, 200, 'several ranges: the whole response');
  assert.equal((await fetchRaw(`${proxy.url}/r`, { range: 'bytes=0-1', 'if-range': '"alpha"' })).status, 206);
  const changed = await fetchRaw(`${proxy.url}/r`, { range: 'bytes=0-1', 'if-range': '"beta"' });
  assert.equal(changed.status, 200, 'If-Range that does not match: the whole response');
  assert.equal(changed.body.toString(), body);
  assert.equal((await fetchRaw(`${proxy.url}/r`, { range: 'bytes=0-1' }, 'HEAD')).body.length, 0);
  assert.equal(origin.count('/r'), 1);
});

test('a range request that misses fetches the whole response, which then answers ranges', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    assert.equal(req.headers.range, undefined);
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('0123456789');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const first = await fetchRaw(`${proxy.url}/m`, { range: 'bytes=2-3' });
  assert.equal(first.status, 200, 'the whole response (RFC 9110 §14.2 allows ignoring Range)');
  assert.equal(first.body.toString(), '0123456789');
  const second = await fetchRaw(`${proxy.url}/m`, { range: 'bytes=2-3' });
  assert.equal(second.status, 206);
  assert.equal(second.body.toString(), '23');
});
