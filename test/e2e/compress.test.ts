import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import zlib from 'node:zlib';
import type { RouteCompressInput } from '../../src/config/acceleration-schema.ts';
import { decoded, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { startProxy } from '../helpers/proxy.ts';

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200);

function compressing(url: string, compress: RouteCompressInput = {}) {
  return {
    upstreams: { app: { servers: [{ url }] } },
    routes: [{ match: {}, upstream: 'app', compress: { enabled: true, ...compress } }],
  };
}

/** An origin answering `TEXT` as text/html, with headers per path. */
function textOrigin(extra: (req: IncomingMessage) => Record<string, string> = () => ({})) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(TEXT)), etag: '"t1"', ...extra(req) });
    res.end(TEXT);
  };
}

test('off by default: a plain route passes bodies as they are', async (t) => {
  const origin = await startOrigin(t, textOrigin());
  const proxy = await startProxy(t, { upstreams: { app: { servers: [{ url: origin.url }] } }, routes: [{ match: {}, upstream: 'app' }] });
  const res = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip, br, zstd' });
  assert.equal(res.headers['content-encoding'], undefined);
  assert.equal(res.headers['vary'], undefined);
});

test('the encoding follows the q-values, ties going to the server order (zstd, br, gzip by default)', async (t) => {
  const origin = await startOrigin(t, textOrigin());
  const proxy = await startProxy(t, compressing(origin.url));
  const cases: [string, string | undefined][] = [
    ['gzip, deflate, br, zstd', 'zstd'],
    ['gzip, deflate, br', 'br'],
    ['gzip', 'gzip'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['deflate', undefined],
    ['identity', undefined],
  ];
  for (const [accept, expected] of cases) {
    const res = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': accept });
    assert.equal(res.headers['content-encoding'], expected, accept);
    assert.equal(decoded(res), TEXT, accept);
    assert.equal(res.headers['vary'], 'Accept-Encoding', `${accept}: Vary whether or not this client got it compressed`);
  }
  const none = await fetchRaw(`${proxy.url}/`);
  assert.equal(none.headers['content-encoding'], undefined, 'no Accept-Encoding, no compression');
  const pinned = await startProxy(t, compressing(origin.url, { encodings: ['gzip', 'br'] }));
  assert.equal((await fetchRaw(`${pinned.url}/`, { 'accept-encoding': 'zstd, br, gzip' })).headers['content-encoding'], 'gzip');
});

test('a compressed response loses its Content-Length (a small one gets the compressed length) and Accept-Ranges, and its strong ETag becomes weak', async (t) => {
  const origin = await startOrigin(t, textOrigin(() => ({ 'accept-ranges': 'bytes' })));
  const proxy = await startProxy(t, compressing(origin.url));
  const res = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' });
  assert.equal(res.headers['content-encoding'], 'gzip');
  assert.equal(res.headers['content-length'], String(res.body.length), 'compressed whole: the length of the compressed bytes');
  assert.equal(res.headers['transfer-encoding'], undefined);
  assert.equal(res.headers['accept-ranges'], undefined);
  assert.equal(res.headers['etag'], 'W/"t1"');
  assert.ok(res.body.length < Buffer.byteLength(TEXT) / 5, `compressed to ${res.body.length} bytes`);
});

test('never compressed: already encoded, no-transform, partial content, tiny, other types, trailers, HEAD has headers only', async (t) => {
  const gzipped = zlib.gzipSync(TEXT);
  const origin = await startOrigin(t, (req, res) => {
    const base = { 'content-type': 'text/html' };
    switch (req.url) {
      case '/encoded':
        res.writeHead(200, { ...base, 'content-encoding': 'gzip', 'content-length': String(gzipped.length) });
        res.end(gzipped);
        return;
      case '/no-transform':
        res.writeHead(200, { ...base, 'cache-control': 'public, no-transform' });
        break;
      case '/no-transform-case':
        // Directive names are case-insensitive (RFC 9111 §5.2).
        res.writeHead(200, { ...base, 'cache-control': 'Max-Age=60, No-Transform' });
        break;
      case '/partial':
        res.writeHead(206, { ...base, 'content-range': `bytes 0-9/${TEXT.length}`, 'content-length': '10' });
        res.end(TEXT.slice(0, 10));
        return;
      case '/tiny':
        res.writeHead(200, { ...base, 'content-length': '5' });
        res.end('small');
        return;
      case '/image':
        res.writeHead(200, { 'content-type': 'image/png' });
        break;
      case '/trailers':
        res.writeHead(200, { ...base, trailer: 'x-digest' });
        res.write(TEXT);
        res.addTrailers({ 'x-digest': 'abc' });
        res.end();
        return;
      default:
        res.writeHead(200, base);
    }
    res.end(TEXT);
  });
  const proxy = await startProxy(t, compressing(origin.url));
  const accept = { 'accept-encoding': 'gzip, br' };
  const encoded = await fetchRaw(`${proxy.url}/encoded`, accept);
  assert.equal(encoded.headers['content-encoding'], 'gzip');
  assert.ok(encoded.body.equals(gzipped), 'passed as it is, not compressed twice');
  for (const path of ['/no-transform', '/no-transform-case', '/partial', '/tiny', '/image', '/trailers']) {
    const res = await fetchRaw(`${proxy.url}${path}`, accept);
    assert.equal(res.headers['content-encoding'], undefined, path);
  }
  const head = await fetchRaw(`${proxy.url}/`, accept, 'HEAD');
  assert.equal(head.headers['content-encoding'], 'br');
  assert.equal(head.body.length, 0);
});

test('min_size and types are configurable', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'content-type': req.url === '/csv' ? 'application/x-custom' : 'text/html', 'content-length': '600' });
    res.end('a'.repeat(600));
  });
  const proxy = await startProxy(t, compressing(origin.url, { min_size: '1kb', types: ['application/*'] }));
  assert.equal((await fetchRaw(`${proxy.url}/csv`, { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined, 'below min_size');
  const lower = await startProxy(t, compressing(origin.url, { min_size: 100, types: ['application/*'] }));
  assert.equal((await fetchRaw(`${lower.url}/csv`, { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip');
  assert.equal((await fetchRaw(`${lower.url}/html`, { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined, 'type not listed');
});

test('a large body is compressed as it flows: the client receives data before the origin has finished', async (t) => {
  let finish: (() => void) | null = null;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    // 4 MiB now, in pieces, then the rest only once the test saw compressed data arrive.
    for (let i = 0; i < 64; i++) res.write(`${i} ${TEXT}`.slice(0, 65_536).padEnd(65_536, '.'));
    finish = () => res.end('the end');
  });
  const proxy = await startProxy(t, compressing(origin.url, { encodings: ['gzip'] }));
  const req = httpRequest(`${proxy.url}/stream`, { headers: { 'accept-encoding': 'gzip' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.headers['content-encoding'], 'gzip');
  const gunzip = zlib.createGunzip();
  res.pipe(gunzip);
  let text = '';
  gunzip.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    gunzip.on('data', (chunk: string) => {
      text += chunk;
      if (finish !== null && text.length > 0) {
        // Data arrived while the origin is still sending: streamed, not buffered whole.
        const end = finish;
        finish = null;
        end();
      }
    });
    gunzip.on('end', () => resolve());
  });
  assert.ok(text.endsWith('the end'));
  assert.equal(text.length, 64 * 65_536 + 'the end'.length);
});

test('a slow stream is flushed as it goes, not held until zlib has a full buffer', async (t) => {
  let writeMore: ((text: string) => void) | null = null;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"event":1}\n');
    writeMore = (text) => (text === '' ? res.end() : res.write(text));
  });
  const proxy = await startProxy(t, compressing(origin.url, { encodings: ['br'] }));
  const req = httpRequest(`${proxy.url}/events`, { headers: { 'accept-encoding': 'br' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const decoder = zlib.createBrotliDecompress();
  res.pipe(decoder);
  decoder.setEncoding('utf8');
  const lines: string[] = [];
  await new Promise<void>((resolve) => {
    decoder.on('data', (chunk: string) => {
      lines.push(chunk);
      const send = writeMore as ((text: string) => void) | null;
      if (lines.length === 1) send?.('{"event":2}\n');
      else send?.('');
    });
    decoder.on('end', () => resolve());
  });
  assert.equal(lines.join(''), '{"event":1}\n{"event":2}\n');
});

test('a small body of unknown length is never compressed into a larger one: it is held up to min_size, then sent with its length', async (t) => {
  const small = '{"ok":true,"message":"a tiny chunked body"}';
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/small') {
      res.write(small.slice(0, 10));
      res.end(small.slice(10));
      return;
    }
    // Larger than min_size, in small writes: decided (and compressed) once min_size has arrived.
    for (let i = 0; i < 40; i++) res.write(`{"line":${i},"padding":"................"}\n`);
    res.end();
  });
  const proxy = await startProxy(t, compressing(origin.url));
  const tiny = await fetchRaw(`${proxy.url}/small`, { 'accept-encoding': 'gzip, br' });
  assert.equal(tiny.headers['content-encoding'], undefined, `${Buffer.byteLength(small)} B stay as they are`);
  assert.equal(tiny.headers['content-length'], String(Buffer.byteLength(small)));
  assert.equal(tiny.body.toString(), small);
  const large = await fetchRaw(`${proxy.url}/large`, { 'accept-encoding': 'gzip' });
  assert.equal(large.headers['content-encoding'], 'gzip');
  assert.ok(large.body.length < Buffer.byteLength(decoded(large)), 'smaller than the original');
  assert.equal(decoded(large).split('\n').length, 41);
});

test('decompress: true decodes a backend encoding for clients that do not accept it', async (t) => {
  const gzipped = zlib.gzipSync(TEXT);
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': String(gzipped.length), etag: '"g"' });
    res.end(gzipped);
  });
  const off = await startProxy(t, compressing(origin.url));
  assert.equal((await fetchRaw(`${off.url}/`, { 'accept-encoding': 'identity' })).headers['content-encoding'], 'gzip', 'off by default');
  const proxy = await startProxy(t, compressing(origin.url, { decompress: true }));
  const plain = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'identity' });
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), TEXT);
  assert.equal(plain.headers['etag'], 'W/"g"');
  assert.equal(plain.headers['vary'], 'Accept-Encoding');
  const passed = await fetchRaw(`${proxy.url}/`, { 'accept-encoding': 'gzip' });
  assert.equal(passed.headers['content-encoding'], 'gzip');
  assert.ok(passed.body.equals(gzipped));
});

test('a client that hangs up during a compressed stream aborts the upstream request', async (t) => {
  let upstreamClosed = false;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(TEXT);
    // Never ends by itself: only the proxy going away closes it.
    res.on('close', () => {
      upstreamClosed = true;
    });
  });
  const proxy = await startProxy(t, compressing(origin.url, { encodings: ['gzip'] }));
  const req = httpRequest(`${proxy.url}/forever`, { headers: { 'accept-encoding': 'gzip' }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  await once(res, 'data');
  req.destroy();
  const { waitFor } = await import('../helpers/http.ts');
  await waitFor(() => upstreamClosed, 5000, 'the upstream request to be aborted');
});
