import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { constants, connect } from 'node:http2';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { h2Request, h2Session, httpsGet } from '../helpers/h2.ts';
import { request, waitFor } from '../helpers/http.ts';
import { readLines } from '../helpers/process.ts';
import { startProxy, simpleProxyConfig } from '../helpers/proxy.ts';

const run = promisify(execFile);

interface Echoed {
  url: string;
  method: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  body: string;
}

async function tlsFiles(t: import('node:test').TestContext): Promise<{ ca: string; files: { cert: string; key: string } }> {
  const ca = await createCa();
  const leaf = await ca.issue({ names: ['localhost', '127.0.0.1'] });
  return { ca: ca.cert, files: await writePair(await tempDir(t), 'leaf', leaf) };
}

test('h2c with prior knowledge: an HTTP/2 request reaches an HTTP/1.1 backend translated (Host from :authority, cookie crumbs joined, no pseudo-header fields)', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  const session = await h2Session(t, proxy.url);
  const res = await h2Request(session, { ':path': '/a/b?c=1', cookie: 'one=1', Cookie: 'two=2', 'x-test': 'yes' });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.url, '/a/b?c=1');
  assert.equal(seen.headers.host, `127.0.0.1:${proxy.port}`);
  assert.equal(seen.headers.cookie, 'one=1; two=2');
  assert.equal(seen.headers['x-test'], 'yes');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.ok(!seen.rawHeaders.some((name) => name.startsWith(':')), 'no pseudo-header field is forwarded');
  assert.equal(seen.rawHeaders.filter((name) => name.toLowerCase() === 'host').length, 1);

  const post = await h2Request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain' }, 'x'.repeat(100_000));
  const posted = JSON.parse(post.body) as Echoed;
  assert.equal(posted.method, 'POST');
  assert.equal(posted.body.length, 100_000);

  // The same listener still serves HTTP/1.1.
  const h1 = await request(`${proxy.url}/plain`);
  assert.equal(h1.status, 200);
  assert.equal((JSON.parse(h1.body) as Echoed).url, '/plain');
});

test('a plain listener without h2c does not take HTTP/2: the preface is answered as a bad HTTP/1.1 request', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const session = connect(proxy.url);
  session.on('error', () => {});
  t.after(() => session.destroy());
  const stream = session.request({ ':path': '/' });
  stream.on('error', () => {});
  await new Promise((resolve) => session.once('close', resolve));
  assert.equal(backend.requests.length, 0);
});

test('HTTPS: HTTP/2 by ALPN and HTTP/1.1 on the same port; the backend is told https', async (t) => {
  const { ca, files } = await tlsFiles(t);
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    forwarded: { forwarded: true },
    listen: [{ address: '127.0.0.1:0', tls: { certificates: [files] } }],
  });
  const origin = `https://localhost:${proxy.port}`;
  const session = await h2Session(t, origin, { ca });
  assert.equal(session.alpnProtocol, 'h2');
  const res = await h2Request(session, { ':path': '/secure' });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.match(String(seen.headers.forwarded), /;proto=https;/);
  assert.equal(seen.headers.via, '2 gatehouse', 'Via names the protocol the request came in with');
  assert.equal(seen.headers.host, `localhost:${proxy.port}`);

  const h1 = await httpsGet(`${origin}/one`, ca);
  assert.equal(h1.status, 200);
  assert.notEqual(h1.alpn, 'h2');
  assert.equal((JSON.parse(h1.body) as Echoed).headers['x-forwarded-proto'], 'https');
});

test('HTTPS with http2.enabled: false offers only HTTP/1.1', async (t) => {
  const { ca, files } = await tlsFiles(t);
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    listen: [{ address: '127.0.0.1:0', tls: { certificates: [files] }, http2: { enabled: false } }],
  });
  const session = connect(`https://localhost:${proxy.port}`, { ca });
  const [error] = (await once(session, 'error')) as [Error];
  assert.match(String(error), /protocol|ALPN|ERR_HTTP2|alert/i);
  session.destroy();
  const h1 = await httpsGet(`https://localhost:${proxy.port}/`, ca);
  assert.equal(h1.status, 200);
});

test('HTTP/2: a Host that disagrees with :authority is refused (RFC 9113 §8.3.1), a missing one is taken from it', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  const session = await h2Session(t, proxy.url);
  const res = await h2Request(session, { ':path': '/', ':authority': 'site.example', host: 'other.example' });
  assert.equal(res.status, 400);
  assert.equal(backend.requests.length, 0);
  const ok = await h2Request(session, { ':path': '/', ':authority': 'site.example' });
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as Echoed).headers.host, 'site.example');
});

test('HTTP/2: routing by host, route response headers, redirects and fixed answers work as over HTTP/1.1', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    listen: [{ address: '127.0.0.1:0', h2c: true }],
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      { match: { host: 'old.example' }, redirect: { to: 'https://new.example/', status: 301 } },
      { match: { path: '/teapot' }, respond: { status: 418, body: 'short and stout' } },
      { match: {}, upstream: 'app', response_headers: { set: { 'x-route': 'app' } } },
    ],
  });
  const session = await h2Session(t, proxy.url);
  const redirect = await h2Request(session, { ':path': '/x', ':authority': 'old.example' });
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, 'https://new.example/');
  const teapot = await h2Request(session, { ':path': '/teapot' });
  assert.equal(teapot.status, 418);
  assert.equal(teapot.body, 'short and stout');
  const app = await h2Request(session, { ':path': '/y' });
  assert.equal(app.headers['x-route'], 'app');
});

test('HTTP/2: response trailers from the backend reach the client', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('part one, ');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end('part two');
  });
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  const session = await h2Session(t, proxy.url);
  const res = await h2Request(session, { ':path': '/', te: 'trailers' });
  assert.equal(res.body, 'part one, part two');
  assert.equal(res.trailers['x-checksum'], 'abc123');
});

test('HTTP/2 rapid reset: a client that cancels most of its streams is disconnected (ENHANCE_YOUR_CALM); others are served', async (t) => {
  const backend = await startBackend(t, (_req, res) => setTimeout(() => res.end('slow'), 200));
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    listen: [{ address: '127.0.0.1:0', h2c: true, http2: { max_premature_resets: 20 } }],
  });
  const attacker = await h2Session(t, proxy.url);
  let goaway: number | undefined;
  attacker.on('goaway', (code: number) => (goaway = code));
  for (let i = 0; i < 200 && !attacker.destroyed && goaway === undefined; i++) {
    const stream = attacker.request({ ':path': `/r${i}` });
    stream.on('error', () => {});
    stream.close(constants.NGHTTP2_CANCEL);
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor(() => attacker.destroyed || goaway !== undefined, 5000, 'the attacker to be disconnected');
  assert.equal(goaway, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  const other = await h2Session(t, proxy.url);
  const res = await h2Request(other, { ':path': '/' });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'slow');
});

test('HTTP/2 drain: on stop, an in-flight stream finishes and the client is told to open no more (GOAWAY)', async (t) => {
  const backend = await startBackend(t, (_req, res) => setTimeout(() => res.end('finished'), 300));
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  const session = await h2Session(t, proxy.url);
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  const pending = h2Request(session, { ':path': '/' });
  await waitFor(() => backend.requests.length === 1, 2000, 'the request to reach the backend');
  const stopped = proxy.gatehouse.stop(5000);
  const res = await pending;
  assert.equal(res.body, 'finished');
  await stopped;
  assert.ok(goaway, 'GOAWAY was sent');
});

test('curl: --http2 over plain HTTP (an h2c upgrade) is answered over HTTP/1.1; --http2-prior-knowledge on an h2c listener and --http2 over TLS get HTTP/2', async (t) => {
  const curl = await which('curl');
  if (curl === null) {
    t.skip('curl is not installed');
    return;
  }
  const { ca, files } = await tlsFiles(t);
  const dir = await tempDir(t);
  const caFile = `${dir}/ca.pem`;
  await writeFile(caFile, ca);
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    listen: [{ address: '127.0.0.1:0' }, { address: '127.0.0.1:0', h2c: true }, { address: '127.0.0.1:0', tls: { certificates: [files] } }],
  });
  const [plain, h2c, tls] = proxy.gatehouse.addresses.map((a) => a.port);
  const version = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(curl, ['-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', ...args]);
    return stdout;
  };
  assert.equal(await version('--http2', `http://127.0.0.1:${plain}/`), '200 1.1');
  assert.equal(await version('--http2-prior-knowledge', `http://127.0.0.1:${h2c}/`), '200 2');
  assert.equal(await version('--http2', '--cacert', caFile, `https://localhost:${tls}/`), '200 2');
  assert.equal(await version('--http1.1', '--cacert', caFile, `https://localhost:${tls}/`), '200 1.1');
});

async function which(command: string): Promise<string | null> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${command}`]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

test('HTTP/2: cache, compression, rate limits, bans and the access log work as over HTTP/1.1', async (t) => {
  let origin = 0;
  const page = 'hello '.repeat(200);
  const backend = await startBackend(t, (req, res) => {
    origin++;
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': req.url === '/cached' ? 'max-age=60' : 'no-store' });
    res.end(page);
  });
  const dir = await tempDir(t);
  const log = `${dir}/access.log`;
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    listen: [{ address: '127.0.0.1:0', h2c: true }],
    access_log: { path: log },
    protection: { bans: { enabled: true, threshold: 2, window: '10s', duration: '1m' } },
    routes: [
      { match: { path: '/cached' }, upstream: 'app', cache: true },
      { match: { path: '/page' }, upstream: 'app', compress: true },
      { match: { path: '/limited' }, upstream: 'app', rate_limits: [{ name: 'ip', rate: '1/m', burst: 0 }] },
    ],
  });
  const session = await h2Session(t, proxy.url);
  const first = await h2Request(session, { ':path': '/cached' });
  const second = await h2Request(session, { ':path': '/cached' });
  assert.equal(second.body, page);
  assert.match(String(second.headers['cache-status']), /hit/);
  assert.equal(origin, 1, 'the second answer came from the cache');
  assert.equal(first.status, 200);
  const compressed = await h2Request(session, { ':path': '/page', 'accept-encoding': 'gzip' });
  assert.equal(compressed.headers['content-encoding'], 'gzip');
  assert.equal((await h2Request(session, { ':path': '/limited' })).status, 200);
  assert.equal((await h2Request(session, { ':path': '/limited' })).status, 429);
  assert.equal((await h2Request(session, { ':path': '/limited' })).status, 429);
  // Two broken limits ban the client: its next request, on this same HTTP/2 connection, is refused.
  assert.equal((await h2Request(session, { ':path': '/cached' })).status, 429);
  const lines = (await readLines(log, 7)).map((line) => JSON.parse(line) as { path: string; status: number });
  assert.deepEqual(lines.map((l) => l.status), [200, 200, 200, 200, 429, 429, 429]);
});

test('a response cut off after its head reaches an HTTP/2 client as a stream reset with an error, not as a complete response', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url], { retries: { attempts: 1 } }), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  const session = await h2Session(t, `http://127.0.0.1:${proxy.port}`);
  const stream = session.request({ ':path': '/' });
  stream.on('error', () => {});
  stream.resume();
  await new Promise((resolve) => stream.on('close', resolve));
  assert.equal(stream.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
});
