import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { Connection } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

test('off by default: no Cache-Status, every request goes upstream', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=3600', 'content-type': 'text/plain' });
    res.end('hello');
  });
  const proxy = await startProxy(t, simpleProxyConfig([origin.url]));
  for (let i = 0; i < 2; i++) {
    const res = await fetchRaw(`${proxy.url}/a`);
    assert.equal(res.headers['cache-status'], undefined);
  }
  assert.equal(origin.count('/a'), 2);
});

test('a cacheable response is stored on a miss and answered from the store', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=3600', 'content-type': 'text/plain', etag: '"v1"' });
    res.end('hello cache');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const miss = await fetchRaw(`${proxy.url}/a?x=1`);
  assert.equal(miss.status, 200);
  assert.equal(cacheStatus(miss), 'gatehouse; fwd=uri-miss; stored');
  assert.equal(miss.headers['age'], undefined, 'a response fresh from the origin has no Age of ours');
  const hit = await fetchRaw(`${proxy.url}/a?x=1`);
  assert.equal(hit.status, 200);
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.body.toString(), 'hello cache');
  assert.equal(hit.headers['content-length'], '11');
  assert.equal(hit.headers['etag'], '"v1"');
  assert.match(String(hit.headers['age']), /^\d+$/);
  assert.equal(origin.count('/a?x=1'), 1);
  const other = await fetchRaw(`${proxy.url}/a?x=2`);
  assert.equal(cacheStatus(other), 'gatehouse; fwd=uri-miss; stored', 'the query is part of the key');
});

test('Age counts the age the response came with and its time in the cache (RFC 9111 §4.2.3)', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/aged') res.writeHead(200, { 'cache-control': 'max-age=3600', age: '100' });
    else res.writeHead(200, { 'cache-control': 'max-age=3600', date: new Date(Date.now() - 30_000).toUTCString() });
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/aged`);
  const aged = await fetchRaw(`${proxy.url}/aged`);
  assert.ok(Number(aged.headers['age']) >= 100, `Age ${String(aged.headers['age'])}`);
  await fetchRaw(`${proxy.url}/dated`);
  const dated = await fetchRaw(`${proxy.url}/dated`);
  assert.ok(Number(dated.headers['age']) >= 29, `Age ${String(dated.headers['age'])}`);
});

test('freshness: s-maxage wins over max-age; Expires; an exhausted lifetime needs revalidation', async (t) => {
  const past = new Date(Date.now() - 60_000).toUTCString();
  const future = new Date(Date.now() + 3_600_000).toUTCString();
  const origin = await startOrigin(t, (req, res) => {
    const headers: Record<string, string> = { etag: '"e"' };
    if (req.url === '/smaxage') headers['cache-control'] = 's-maxage=0, max-age=3600';
    if (req.url === '/expired') headers['expires'] = past;
    if (req.url === '/expires') headers['expires'] = future;
    if (req.url === '/aged-out') Object.assign(headers, { 'cache-control': 'max-age=60', age: '61' });
    res.writeHead(200, headers);
    res.end('body');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  for (const [path, second] of [
    ['/smaxage', 'gatehouse; fwd=stale; fwd-status=200; stored'],
    ['/expired', 'gatehouse; fwd=stale; fwd-status=200; stored'],
    ['/aged-out', 'gatehouse; fwd=stale; fwd-status=200; stored'],
    ['/expires', 'gatehouse; hit'],
  ] as const) {
    await fetchRaw(`${proxy.url}${path}`);
    const res = await fetchRaw(`${proxy.url}${path}`);
    assert.equal(cacheStatus(res), second, path);
  }
  assert.equal(origin.seen.find((r) => r.url === '/smaxage' && r.headers['if-none-match'] === '"e"') !== undefined, true, 'revalidated with its ETag');
});

test('heuristic freshness from Last-Modified when nothing explicit is given (RFC 9111 §4.2.2)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'last-modified': new Date(Date.now() - 10 * 86_400_000).toUTCString() });
    res.end('old news');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/h`);
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/h`)), 'gatehouse; hit');
  const off = await startProxy(t, cachingConfig(origin.url, { heuristic_fraction: 0 }));
  await fetchRaw(`${off.url}/h2`);
  assert.match(cacheStatus(await fetchRaw(`${off.url}/h2`)), /fwd=stale/, 'no heuristic: stale at once, revalidated');
});

test('not stored: no-store, private, Set-Cookie, Authorization, statuses without freshness; Cache-Status says why', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    const cases: Record<string, Record<string, string>> = {
      '/no-store': { 'cache-control': 'no-store' },
      '/private': { 'cache-control': 'private, max-age=60' },
      '/cookie': { 'cache-control': 'public, max-age=60', 'set-cookie': 'session=secret' },
      '/auth': { 'cache-control': 'max-age=60' },
      '/auth-public': { 'cache-control': 'public, max-age=60' },
      '/error': {},
      '/vary-star': { 'cache-control': 'max-age=60', vary: '*' },
    };
    res.writeHead(req.url === '/error' ? 500 : 200, cases[req.url ?? ''] ?? {});
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const expectations: [string, Record<string, string>, string][] = [
    ['/no-store', {}, 'detail=no-store'],
    ['/private', {}, 'detail=private'],
    ['/cookie', {}, 'detail=set-cookie'],
    ['/auth', { authorization: 'Bearer x' }, 'detail=authorization'],
    ['/error', {}, 'detail=status'],
    ['/vary-star', {}, 'detail=vary-star'],
  ];
  for (const [path, headers, detail] of expectations) {
    const first = await fetchRaw(`${proxy.url}${path}`, headers);
    assert.ok(cacheStatus(first).endsWith(detail), `${path}: ${cacheStatus(first)}`);
    await fetchRaw(`${proxy.url}${path}`, headers);
    assert.equal(origin.count(path), 2, `${path} goes upstream each time`);
  }
  assert.equal((await fetchRaw(`${proxy.url}/cookie`)).headers['set-cookie']?.[0], 'session=secret', 'the cookie still reaches its client');
  await fetchRaw(`${proxy.url}/auth-public`, { authorization: 'Bearer x' });
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/auth-public`, { authorization: 'Bearer x' })), 'gatehouse; hit', 'public allows it (§3.5)');
});

test('private="set-cookie" stores the response without the cookie', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60, private="set-cookie"', 'set-cookie': 'id=1' });
    res.end('shared');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const first = await fetchRaw(`${proxy.url}/p`);
  assert.deepEqual(first.headers['set-cookie'], ['id=1'], 'the response to the first client keeps it');
  const hit = await fetchRaw(`${proxy.url}/p`);
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.headers['set-cookie'], undefined);
});

test('HEAD is answered from a cached GET; a HEAD miss fetches GET and fills the cache', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', 'content-length': '10' });
    res.end('0123456789');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/g`);
  const head = await fetchRaw(`${proxy.url}/g`, {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(cacheStatus(head), 'gatehouse; hit');
  assert.equal(head.headers['content-length'], '10');
  assert.equal(head.body.length, 0);
  const headMiss = await fetchRaw(`${proxy.url}/h`, {}, 'HEAD');
  assert.equal(headMiss.body.length, 0);
  assert.equal(headMiss.status, 200);
  assert.equal(headMiss.headers['content-length'], '10', 'the length of the GET answer');
  assert.equal(cacheStatus(headMiss), 'gatehouse; fwd=uri-miss; stored');
  assert.equal(origin.seen.at(-1)?.method, 'GET', 'the origin was asked for GET');
  const get = await fetchRaw(`${proxy.url}/h`);
  assert.equal(cacheStatus(get), 'gatehouse; hit');
  assert.equal(get.body.toString(), '0123456789');
  assert.equal(origin.count('/h'), 1);
});

test("an upstream cache's Cache-Status is kept after ours (RFC 9211 §2)", async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'cache-status': 'OriginCache; hit' });
    res.end('x');
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/s`)), 'gatehouse; fwd=uri-miss; stored, OriginCache; hit');
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/s`)), 'gatehouse; hit, OriginCache; hit');
});

test('a small binary body is answered byte for byte (small bodies are served from their latin1 text)', async (t) => {
  const body = Buffer.alloc(1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) % 256;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  await fetchRaw(`${proxy.url}/bin`);
  const hit = await fetchRaw(`${proxy.url}/bin`);
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.headers['content-length'], '1024');
  assert.ok(hit.body.equals(body));
  const range = await fetchRaw(`${proxy.url}/bin`, { range: 'bytes=100-355' });
  assert.equal(range.status, 206);
  assert.ok(range.body.equals(body.subarray(100, 356)));
});

test('a hit on the wire: one Date (the stored one), framing by Content-Length, connection fields as node:http writes them', async (t) => {
  const date = new Date(Date.now() - 1000).toUTCString();
  const origin = await startOrigin(t, (req, res) => {
    const dated = req.url === '/wire';
    if (!dated) res.sendDate = false;
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', ...(dated ? { date } : {}), 'x-multi': ['a', 'b'] });
    res.end('stored body');
  });
  const proxy = await startProxy(t, { ...cachingConfig(origin.url), limits: { keepalive_timeout: '7s', max_requests_per_connection: 50 } });
  await fetchRaw(`${proxy.url}/wire`);
  await fetchRaw(`${proxy.url}/undated`);
  const connection = await Connection.open(t, proxy.port);
  const host = `127.0.0.1:${proxy.port}`;
  const connectionLines = (head: string): string => head.split('\r\n').filter((line) => /^(connection|keep-alive):/.test(line)).join('|');
  // What node:http's own writeHead says of a kept-alive connection with these limits.
  const keptAlive = 'connection: keep-alive|keep-alive: timeout=7, max=50';
  for (let i = 0; i < 3; i++) {
    const hit = await connection.get('/wire', { host });
    assert.equal(hit.status, 200);
    assert.match(hit.head, /^http\/1\.1 200 ok\r\n/);
    assert.equal(hit.body, 'stored body');
    assert.match(hit.head, /\r\ncache-status: gatehouse; hit\r\n/);
    assert.equal(hit.head.match(/\r\ndate: /g)?.length, 1, 'one Date');
    assert.ok(hit.head.includes(`\r\ndate: ${date.toLowerCase()}\r\n`), 'the stored Date (RFC 9111 §4)');
    assert.match(hit.head, /\r\nx-multi: a\r\nx-multi: b\r\n/, 'repeated fields kept as separate lines');
    assert.match(hit.head, /\r\ncontent-length: 11\r\n/);
    assert.doesNotMatch(hit.head, /transfer-encoding/);
    assert.equal(connectionLines(hit.head), keptAlive);
  }
  // A stored response without Date gets one of ours.
  const undated = await connection.get('/undated', { host });
  assert.match(undated.head, /\r\ncache-status: gatehouse; hit\r\n/);
  assert.equal(undated.head.match(/\r\ndate: /g)?.length, 1, 'one Date');
  assert.equal(connectionLines(undated.head), keptAlive);
  connection.write(`GET /wire HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  const last = await connection.answer();
  assert.equal(last.body, 'stored body');
  assert.equal(connectionLines(last.head), 'connection: close');
  await connection.closed;
});

test('a hit on a route that also sets headers (a rate limit) keeps them and its framing', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end('limited body');
  });
  const config = cachingConfig(origin.url);
  const proxy = await startProxy(t, { ...config, routes: [{ ...config.routes![0]!, rate_limits: [{ name: 'per-ip', rate: '100/s', burst: 100, response_headers: true }] }] });
  await fetchRaw(`${proxy.url}/limited`);
  const connection = await Connection.open(t, proxy.port);
  for (let i = 0; i < 2; i++) {
    const hit = await connection.get('/limited', { host: `127.0.0.1:${proxy.port}` });
    assert.equal(hit.body, 'limited body');
    assert.match(hit.head, /\r\ncache-status: gatehouse; hit\r\n/);
    assert.equal(hit.head.match(/\r\nratelimit: /g)?.length, 1, 'the rate limit header, once');
    assert.equal(hit.head.match(/\r\ndate: /g)?.length, 1, 'one Date');
    assert.match(hit.head, /\r\ncontent-type: text\/plain\r\n/);
    assert.match(hit.head, /\r\ncontent-length: 12\r\n/);
    assert.match(hit.head, /\r\nconnection: keep-alive\r\n/);
  }
});

test('hits keep node:http framing: pipelined, HEAD then GET, HTTP/1.0, the last request a connection may carry', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end('framed');
  });
  const proxy = await startProxy(t, { ...cachingConfig(origin.url), limits: { max_requests_per_connection: 4 } });
  const host = `127.0.0.1:${proxy.port}`;
  await fetchRaw(`${proxy.url}/f`);
  const connection = await Connection.open(t, proxy.port);
  // Two requests in one packet, then a HEAD whose answer has a length and no body.
  connection.write(`GET /f HTTP/1.1\r\nhost: ${host}\r\n\r\nGET /f HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  for (let i = 0; i < 2; i++) assert.equal((await connection.answer()).body, 'framed');
  connection.write(`HEAD /f HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  await waitFor(() => connection.pending.includes('\r\n\r\n'), 2000, 'the HEAD answer');
  const head = connection.pending;
  assert.match(head.toLowerCase(), /\r\ncontent-length: 6\r\n/);
  assert.ok(head.endsWith('\r\n\r\n'), 'no body after a HEAD answer');
  // Read the HEAD answer away (its Content-Length would make answer() wait for a body).
  connection.write(`GET /f HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  await waitFor(() => connection.pending.length > head.length && connection.pending.endsWith('framed'), 2000, 'the fourth answer');
  const fourth = connection.pending.slice(head.length).toLowerCase();
  assert.match(fourth, /\r\nconnection: close\r\n/, 'the last request a connection may carry');
  await connection.closed;

  const http10 = await Connection.open(t, proxy.port);
  http10.write(`GET /f HTTP/1.0\r\nhost: ${host}\r\nconnection: keep-alive\r\n\r\n`);
  const kept = await http10.answer();
  assert.equal(kept.body, 'framed');
  assert.match(kept.head, /\r\nconnection: keep-alive\r\n/);
  http10.write(`GET /f HTTP/1.0\r\nhost: ${host}\r\n\r\n`);
  const closing = await http10.answer();
  assert.equal(closing.body, 'framed');
  assert.match(closing.head, /\r\nconnection: close(\r\n|$)/);
  await http10.closed;
});

test('large bodies stream through on a miss and are answered whole from memory', async (t) => {
  const body = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 256;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' });
    // Written in pieces, without Content-Length: chunked.
    let offset = 0;
    const write = (): void => {
      while (offset < body.length) {
        const ok = res.write(body.subarray(offset, offset + 65_536));
        offset += 65_536;
        if (!ok) {
          res.once('drain', write);
          return;
        }
      }
      res.end();
    };
    write();
  });
  const proxy = await startProxy(t, cachingConfig(origin.url));
  const miss = await fetchRaw(`${proxy.url}/big`);
  assert.ok(miss.body.equals(body));
  const hit = await fetchRaw(`${proxy.url}/big`);
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.headers['content-length'], String(body.length));
  assert.ok(hit.body.equals(body));
});

test('a body over max_object_size is passed on but not stored', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', ...(req.url === '/declared' ? { 'content-length': '4000' } : {}) });
    res.end(Buffer.alloc(4000, 'x'));
  });
  const proxy = await startProxy(
    t,
    cachingConfig(origin.url, { store: 'small' }, { cache: { stores: { small: { type: 'memory', max_object_size: '1kb' } } } }),
  );
  for (const path of ['/declared', '/streamed']) {
    const first = await fetchRaw(`${proxy.url}${path}`);
    assert.equal(first.body.length, 4000);
    const second = await fetchRaw(`${proxy.url}${path}`);
    assert.equal(second.body.length, 4000);
    assert.notEqual(cacheStatus(second), 'gatehouse; hit', path);
  }
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/declared`)), 'gatehouse; fwd=uri-miss; detail=too-large');
});

test('a reload keeps the cache (the store is held by name across snapshots)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('kept');
  });
  const config = cachingConfig(origin.url);
  const proxy = await startProxy(t, config);
  await fetchRaw(`${proxy.url}/r`);
  const { configFromObject } = await import('../../src/config/load.ts');
  await proxy.gatehouse.reload(configFromObject({ ...config, listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false } }));
  assert.equal(cacheStatus(await fetchRaw(`${proxy.url}/r`)), 'gatehouse; hit');
  assert.equal(origin.count('/r'), 1);
});
