/**
 * Small bodies of known length are compressed whole, in one call: the answer carries the
 * compressed length and leaves in one piece. Larger ones, and bodies of unknown length, stream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteCompressInput } from '../../src/config/acceleration-schema.ts';
import { SYNC_LIMIT } from '../../src/middleware/compress/streams.ts';
import { decoded, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

/** Compressible text of exactly `bytes` bytes. */
function text(bytes: number): string {
  return 'Gatehouse compresses a whole small page in one call. '.repeat(Math.ceil(bytes / 52)).slice(0, bytes);
}

const AT_LIMIT = text(SYNC_LIMIT);
const OVER_LIMIT = text(SYNC_LIMIT + 1);

function compressing(url: string, compress: RouteCompressInput = {}) {
  return {
    upstreams: { app: { servers: [{ url }] } },
    routes: [{ match: {}, upstream: 'app', compress: { enabled: true, ...compress } }],
  };
}

test('a body of known length up to the limit gets the compressed length; one over it is chunked; every encoding, body after body', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    const body = req.url === '/over' ? OVER_LIMIT : req.url === '/short' ? text(3000) : AT_LIMIT;
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  });
  const proxy = await startProxy(t, compressing(origin.url));
  for (let round = 0; round < 2; round++) {
    for (const encoding of ['gzip', 'br', 'zstd']) {
      for (const [path, body] of [['/at', AT_LIMIT], ['/short', text(3000)]] as const) {
        const res = await fetchRaw(`${proxy.url}${path}`, { 'accept-encoding': encoding });
        assert.equal(res.headers['content-encoding'], encoding, `${encoding} ${path}`);
        assert.equal(res.headers['content-length'], String(res.body.length), `${encoding} ${path}: the compressed length`);
        assert.equal(res.headers['transfer-encoding'], undefined);
        assert.match(String(res.headers['x-request-id']), /^[0-9a-f]{32}$/, `${encoding} ${path}: the request id, as on any answer`);
        assert.equal(decoded(res), body, `${encoding} ${path}`);
      }
      const over = await fetchRaw(`${proxy.url}/over`, { 'accept-encoding': encoding });
      assert.equal(over.headers['content-encoding'], encoding);
      assert.equal(over.headers['content-length'], undefined, `${encoding}: over the limit, streamed`);
      assert.equal(over.headers['transfer-encoding'], 'chunked');
      assert.equal(decoded(over), OVER_LIMIT);
    }
  }
});

test('two routes at different levels share nothing they should not: each body decodes to its own', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    const body = text(req.url?.startsWith('/fast') === true ? 7000 : 9000);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.end(body);
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: origin.url }] } },
    routes: [
      { match: { path_prefix: '/fast' }, upstream: 'app', compress: { enabled: true, level: { gzip: 1, zstd: 1 } } },
      { match: {}, upstream: 'app', compress: { enabled: true, level: { gzip: 9, zstd: 19 } } },
    ],
  });
  for (let i = 0; i < 3; i++) {
    for (const encoding of ['gzip', 'zstd']) {
      const fast = await fetchRaw(`${proxy.url}/fast`, { 'accept-encoding': encoding });
      const best = await fetchRaw(`${proxy.url}/best`, { 'accept-encoding': encoding });
      assert.equal(decoded(fast), text(7000), encoding);
      assert.equal(decoded(best), text(9000), encoding);
    }
  }
});

test('HEAD of a small body: the headers a GET gets, without a length, and no body', async (t) => {
  const body = text(5000);
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(body.length), etag: '"v1"', vary: 'Cookie' });
    res.end(body);
  });
  const proxy = await startProxy(t, compressing(origin.url));
  const get = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' });
  const head = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' }, 'HEAD');
  for (const res of [get, head]) {
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['etag'], 'W/"v1"', 'weak: the bytes are not the identity representation');
    assert.equal(res.headers['vary'], 'Cookie, Accept-Encoding');
  }
  assert.equal(head.headers['content-length'], undefined);
  assert.equal(head.body.length, 0);
  assert.equal(decoded(get), body);
});

test('a client without Accept-Encoding gets the body as it is, with Vary; a range answer (206) is left alone', async (t) => {
  const body = text(5000);
  const origin = await startOrigin(t, (req, res) => {
    if (req.headers.range !== undefined) {
      res.writeHead(206, { 'content-type': 'text/html', 'content-range': `bytes 0-99/${body.length}`, 'content-length': '100' });
      res.end(body.slice(0, 100));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(body.length), 'accept-ranges': 'bytes' });
    res.end(body);
  });
  const proxy = await startProxy(t, compressing(origin.url));
  const plain = await fetchRaw(`${proxy.url}/`);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers['content-length'], String(body.length));
  assert.equal(plain.headers['vary'], 'Accept-Encoding');
  assert.equal(plain.body.toString(), body);
  const range = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip', range: 'bytes=0-99' });
  assert.equal(range.status, 206);
  assert.equal(range.headers['content-encoding'], undefined);
  assert.equal(range.body.toString(), body.slice(0, 100));
  const whole = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' });
  assert.equal(whole.headers['accept-ranges'], undefined, 'ranges of the compressed bytes are not offered');
});

test('a backend that fails in the middle of a small body: nothing was sent yet, so the client gets a 502', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': '20000' });
    res.write(text(5000));
    // Flushed, then the connection goes: the body is 15000 bytes short.
    setImmediate(() => res.destroy());
  });
  const proxy = await startProxy(t, compressing(origin.url));
  const res = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' });
  assert.equal(res.status, 502);
  assert.equal(res.headers['content-encoding'], undefined);
});

test('with the cache after it, a small body compressed whole is one stage of the chain: the stored variant is the compressed bytes', async (t) => {
  const body = text(9000);
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length), 'cache-control': 'max-age=600' });
    res.end(body);
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: origin.url }] } },
    routes: [{ match: {}, upstream: 'app', cache: true, compress: { enabled: true } }],
  });
  for (const encoding of ['gzip', 'zstd']) {
    const miss = await fetchRaw(`${proxy.url}/page`, { 'accept-encoding': encoding });
    assert.equal(miss.headers['content-encoding'], encoding);
    assert.ok(miss.body.length < body.length / 4, `${encoding}: compressed on the miss`);
    assert.equal(decoded(miss), body);
    const hit = await fetchRaw(`${proxy.url}/page`, { 'accept-encoding': encoding });
    assert.match(String(hit.headers['cache-status']), /hit/, `${encoding}: served from the store`);
    assert.equal(hit.headers['content-length'], String(miss.body.length), `${encoding}: the stored compressed size`);
    assert.ok(hit.body.equals(miss.body), `${encoding}: the compressed bytes were stored`);
  }
  assert.equal(origin.count('/page'), 2, 'one origin request per encoding');
});
