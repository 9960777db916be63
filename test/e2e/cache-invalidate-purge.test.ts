import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

const HOST = 'app.example';

test('a successful unsafe request invalidates its URL and the same-origin Location / Content-Location (RFC 9111 §4.4)', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.method === 'POST') {
      res.writeHead(201, { location: '/items/7', 'content-location': `http://${HOST}/items?page=1` });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(`${req.url}`);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const host = { host: HOST };
  for (const path of ['/items', '/items/7', '/items?page=1', '/other']) await fetchRaw(`${proxy.url}${path}`, host);
  const post = await fetchRaw(`${proxy.url}/items`, host, 'POST', 'new item');
  assert.equal(post.status, 201);
  for (const path of ['/items', '/items/7', '/items?page=1']) {
    assert.equal(cacheStatus(await fetchRaw(`${proxy.url}${path}`, host)), 'gatehouse; fwd=uri-miss; stored', path);
  }
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/other`, host)), 'gatehouse; hit');
});

test('a failed unsafe request invalidates nothing; another origin named in Location is left alone', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.method === 'DELETE') {
      res.writeHead(500);
      res.end();
      return;
    }
    if (req.method === 'PUT') {
      res.writeHead(200, { location: 'http://elsewhere.example/b' });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const host = { host: HOST };
  await fetchRaw(`${proxy.url}/a`, host);
  await fetchRaw(`${proxy.url}/b`, { host: 'elsewhere.example' });
  await fetchRaw(`${proxy.url}/a`, host, 'DELETE');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/a`, host)), 'gatehouse; hit', 'a 500 invalidates nothing');
  await fetchRaw(`${proxy.url}/c`, host, 'PUT');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/b`, { host: 'elsewhere.example' })), 'gatehouse; hit');
  assert.equal(origin.seen.filter((r) => r.method !== 'GET').length, 2, 'both unsafe requests reached the origin');
});

test('purge through the admin API: by URL (every variant), by prefix, by tag, everything', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    const tags: Record<string, Record<string, string>> = {
      '/products/1': { 'surrogate-key': 'product-1 catalog' },
      '/products/2': { 'cache-tag': 'product-2, catalog' },
    };
    res.writeHead(200, { 'cache-control': 'max-age=600', vary: 'Accept-Language', ...(tags[req.url ?? ''] ?? {}) });
    res.end(`${req.url}`);
  });
  const proxy = await startProxy(t, { ...cachingConfig(origin.url), admin: { address: '127.0.0.1:0' } });
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  const host = { host: HOST };
  const fill = async (path: string, lang = 'en'): Promise<void> => {
    await fetchRaw(`${proxy.url}${path}`, { ...host, 'accept-language': lang });
  };
  const isHit = async (path: string, lang = 'en'): Promise<boolean> =>
    cacheStatus(await fetchRaw(`${proxy.url}${path}`, { ...host, 'accept-language': lang })) === 'gatehouse; hit';
  const purge = async (query: string): Promise<{ status: number; purged: number }> => {
    const res = await fetchRaw(`${admin}/cache/purge?${query}`, {}, 'POST');
    return { status: res.status, purged: (JSON.parse(res.body.toString()) as { purged: number }).purged };
  };

  await fill('/page');
  await fill('/page', 'fr');
  assert.deepEqual(await purge(`url=${encodeURIComponent(`http://${HOST}/page`)}`), { status: 200, purged: 2 });
  assert.equal(await isHit('/page'), false);
  assert.equal(await isHit('/page', 'fr'), false);

  await fill('/static/a.css');
  await fill('/static/b.js');
  await fill('/stat');
  assert.equal((await purge(`prefix=${encodeURIComponent(`http://${HOST}/static/`)}`)).purged, 2);
  assert.equal(await isHit('/static/a.css'), false);
  assert.equal(await isHit('/stat'), true);

  await fill('/products/1');
  await fill('/products/2');
  const tagged = await fetchRaw(`${proxy.url}/products/1`, { ...host, 'accept-language': 'en' });
  assert.equal(tagged.headers['surrogate-key'], undefined, 'tag headers are not sent to clients');
  assert.equal((await purge('tag=product-1')).purged, 1);
  assert.equal(await isHit('/products/1'), false);
  assert.equal(await isHit('/products/2'), true);
  assert.equal((await purge('tag=catalog')).purged, 2);
  assert.equal(await isHit('/products/2'), false);

  const stats = JSON.parse((await fetchRaw(`${admin}/cache`)).body.toString()) as { stores: Record<string, { entries: number; hits: number }> };
  assert.ok((stats.stores['default']?.entries ?? 0) > 0);
  assert.ok((stats.stores['default']?.hits ?? 0) > 0);
  const all = await purge('all=true');
  assert.equal(all.purged, stats.stores['default']?.entries);
  assert.equal(await isHit('/stat'), false, 'everything is gone');
  assert.equal(await isHit('/static/b.js'), false);

  assert.equal((await fetchRaw(`${admin}/cache/purge?url=not-a-url`, {}, 'POST')).status, 400);
  assert.equal((await fetchRaw(`${admin}/cache/purge?url=http://a/&tag=x`, {}, 'POST')).status, 400);
  assert.equal((await fetchRaw(`${admin}/cache/purge?tag=x`)).status, 405);
});
