/** A plain listener's redirect_https (308 to https, ACME challenges excepted) and a TLS listener's hsts on every kind of answer. */
import assert from 'node:assert/strict';
import { once as eventOnce } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import type { ConfigInput } from '../../src/config/schema.ts';
import { configFromObject } from '../../src/config/load.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair, type TestCa } from '../helpers/certs.ts';
import { h2Request, h2Session, httpsGet, type HttpsResponse } from '../helpers/h2.ts';
import { rawRequest, request } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy, type RunningProxy } from '../helpers/proxy.ts';

test('redirect_https: every plain request gets 308 to the same URL over https; ACME challenges are served', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', redirect_https: true }] });
  const answer = await request(`${proxy.url}/shop/cart?item=7&x=%20y`, { headers: { host: 'Example.test:8080' } });
  assert.equal(answer.status, 308, '308 keeps the method and the body');
  assert.equal(answer.headers.location, 'https://example.test/shop/cart?item=7&x=%20y');
  const post = await request(`${proxy.url}/form`, { method: 'POST', headers: { host: 'example.test' }, body: 'a=1' });
  assert.equal(post.status, 308);
  const upgrade = await rawRequest(
    proxy.port,
    'GET /chat HTTP/1.1\r\nhost: example.test\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.match(upgrade, /^HTTP\/1\.1 308 .*\r\nlocation: https:\/\/example\.test\/chat\r\n/is, 'a WebSocket handshake is sent to wss:// too, not tunnelled in the clear');
  const challenge = await request(`${proxy.url}/.well-known/acme-challenge/token123`, { headers: { host: 'example.test' } });
  assert.equal(challenge.status, 200, 'HTTP-01 challenges are answered over plain HTTP (RFC 8555 §8.3)');
  assert.equal((JSON.parse(challenge.body) as { url: string }).url, '/.well-known/acme-challenge/token123');
});

test('redirect_https with a port, and a reload that turns it off', async (t) => {
  const backend = await startBackend(t, echo());
  const config = { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', redirect_https: { port: 8443 } }] };
  const proxy = await startProxy(t, config);
  assert.equal((await request(`${proxy.url}/a`, { headers: { host: 'example.test' } })).headers.location, 'https://example.test:8443/a');
  await proxy.gatehouse.reload(configFromObject({ ...config, access_log: { enabled: false }, listen: [{ address: '127.0.0.1:0' }] }));
  assert.equal((await request(`${proxy.url}/a`, { headers: { host: 'example.test' } })).status, 200);
});

/** How many times a field is in a head as received ([name, value, ...]). */
function count(rawHeaders: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === name) n++;
  return n;
}

/** The position of a field in a head as received, -1 when absent. */
function position(rawHeaders: readonly string[], name: string): number {
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === name) return i / 2;
  return -1;
}

/** Writes `text` on a TLS connection and returns all that comes back until the server closes it. */
async function rawTls(t: TestContext, port: string, ca: string, text: string): Promise<string> {
  const socket = tlsConnect({ port: Number(port), host: '127.0.0.1', ca, servername: 'site.test' });
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.write(text);
  await eventOnce(socket, 'close');
  return received;
}

const STS = 'strict-transport-security';
const EXPECTED = 'max-age=63072000; includeSubDomains; preload';

/**
 * A TLS listener with hsts and a plain one, both in front of a backend that answers WebSocket
 * handshakes, sends its own Strict-Transport-Security on /own and /cached/own, and lets /cached*
 * be stored for a minute.
 */
async function startHstsProxy(t: TestContext): Promise<{ ca: TestCa; origin: string; plain: string; proxy: RunningProxy; backendRequests: () => number }> {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  let requests = 0;
  const backend = await startBackend(t, (req, res) => {
    requests++;
    if (req.url === '/own' || req.url === '/cached/own') res.setHeader(STS, 'max-age=0');
    if (req.url === '/page') {
      const page = 'a page compressed whole, in one call. '.repeat(40);
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(page.length) });
      res.end(page);
      return;
    }
    if (req.url?.startsWith('/cached') === true) {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('etag', `"${req.url}"`);
    }
    res.end('ok');
  });
  const wss = new WebSocketServer({ server: backend.server });
  wss.on('connection', (socket) => socket.send('hello'));
  t.after(() => wss.close());
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      { match: { path: '/moved' }, redirect: { to: '/new' } },
      { match: { path: '/fixed' }, respond: { status: 200, body: 'fixed\n' } },
      { match: { path: '/denied' }, upstream: 'app', access: { deny: ['127.0.0.0/8'] } },
      { match: { path: '/page' }, upstream: 'app', compress: true },
      { match: { path_prefix: '/cached' }, upstream: 'app', cache: true },
      { match: { path_prefix: '/' }, upstream: 'app' },
    ],
    listen: [
      { address: '127.0.0.1:0', tls: { certificates: [pair] }, hsts: { max_age: '730d', include_subdomains: true, preload: true } },
      { address: '127.0.0.1:0' },
    ],
  } as ConfigInput);
  const plainPort = proxy.gatehouse.addresses[1]?.port;
  assert.ok(plainPort !== undefined);
  return { ca, origin: `https://127.0.0.1:${proxy.port}`, plain: `http://127.0.0.1:${plainPort}`, proxy, backendRequests: () => requests };
}

test('hsts: Strict-Transport-Security once on every answer of a TLS listener, over HTTP/1.1 and HTTP/2, WebSocket handshakes included; the backend may set its own', async (t) => {
  const { ca, origin, plain } = await startHstsProxy(t);
  const get = (path: string, headers: Record<string, string> = {}) => httpsGet(`${origin}${path}`, ca.cert, { servername: 'site.test', headers });
  const once = (answer: HttpsResponse, what: string, value = EXPECTED): void => {
    assert.equal(count(answer.rawHeaders, STS), 1, `${what}: one Strict-Transport-Security field`);
    assert.equal(answer.headers[STS], value, what);
  };
  const forwarded = await get('/');
  assert.equal(forwarded.status, 200);
  once(forwarded, 'a forwarded answer');
  const redirected = await get('/moved');
  assert.equal(redirected.status, 302);
  once(redirected, 'a redirect route');
  const fixed = await get('/fixed');
  assert.equal(fixed.body, 'fixed\n');
  once(fixed, 'a respond route');
  const denied = await get('/denied');
  assert.equal(denied.status, 403);
  once(denied, "a route's access rule refusing");
  const refused = await get('/', { host: 'a b' });
  assert.equal(refused.status, 400);
  once(refused, 'a request the checks refuse');
  once(await get('/own'), "the backend's own field, in place of the listener's", 'max-age=0');
  const compressed = await get('/page', { 'accept-encoding': 'gzip' });
  assert.equal(compressed.headers['content-encoding'], 'gzip');
  once(compressed, 'a body rewritten whole (compressed in one call)');

  const websocket = { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  const refusedHandshake = await get('/', { ...websocket, host: 'a b' });
  assert.equal(refusedHandshake.status, 400);
  once(refusedHandshake, 'a WebSocket handshake the checks refuse (the same admission step)');
  // Written on the socket by the upgrade handler (node's client never finishes reading it: it waits for the upgrade).
  const notTunnelled = await rawTls(t, new URL(origin).port, ca.cert, `GET /moved HTTP/1.1\r\nhost: site.test\r\n${Object.entries(websocket).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  assert.match(notTunnelled, /^HTTP\/1\.1 400 Bad Request\r\n/, 'a handshake to a route that does not forward');
  assert.equal(notTunnelled.split(`\r\n${STS}: ${EXPECTED}\r\n`).length, 2, 'a tunnel refused: one field');
  const client = new WebSocket(`wss://127.0.0.1:${new URL(origin).port}/chat`, undefined, { ca: ca.cert, servername: 'site.test' } as WebSocket.ClientOptions);
  t.after(() => client.terminate());
  // Both listened for at once: the greeting may come in the same read as the 101.
  const greeting = eventOnce(client, 'message') as Promise<[Buffer]>;
  const [switched] = (await eventOnce(client, 'upgrade')) as [IncomingMessage];
  assert.equal(switched.statusCode, 101);
  assert.equal(count(switched.rawHeaders, STS), 1, 'the 101 of a WebSocket handshake');
  assert.equal(switched.headers[STS], EXPECTED);
  assert.equal((await greeting)[0].toString(), 'hello', 'the tunnel works');
  // Closed here: the backend's close (an earlier t.after) waits for the tunnel's connection.
  client.close();
  await eventOnce(client, 'close');

  const session = await h2Session(t, origin, { ca: ca.cert, servername: 'site.test' });
  const h2 = await h2Request(session, { ':path': '/' });
  assert.equal(h2.status, 200);
  assert.equal(h2.headers[STS], EXPECTED, 'an HTTP/2 answer');
  const h2Redirect = await h2Request(session, { ':path': '/moved' });
  assert.equal(h2Redirect.status, 302);
  assert.equal(h2Redirect.headers[STS], EXPECTED, "an HTTP/2 answer of the proxy's own");
  assert.equal((await h2Request(session, { ':path': '/own' })).headers[STS], 'max-age=0', 'HTTP/2, the backend sets its own (once: a second field would be joined to it)');

  for (const path of ['/', '/moved', '/fixed', '/own']) {
    const answer = await request(`${plain}${path}`);
    assert.equal(count(answer.rawHeaders, STS), path === '/own' ? 1 : 0, `a plain listener adds none (${path})`);
  }
});

test('hsts on answers from the cache: hits on the pre-serialised head, HTTP/2 hits, 304s; the stored field of the backend kept', async (t) => {
  const { ca, origin, plain, backendRequests } = await startHstsProxy(t);
  const get = (path: string, headers: Record<string, string> = {}) => httpsGet(`${origin}${path}`, ca.cert, { servername: 'site.test', headers });
  const stored = await get('/cached');
  assert.equal(stored.headers['cache-status'], 'gatehouse; fwd=uri-miss; stored');
  assert.equal(count(stored.rawHeaders, STS), 1);
  const before = backendRequests();
  const hit = await get('/cached');
  assert.equal(hit.headers['cache-status'], 'gatehouse; hit');
  assert.equal(count(hit.rawHeaders, STS), 1, 'a hit: one field');
  assert.equal(hit.headers[STS], EXPECTED);
  // The pre-serialised head puts Content-Length after the stored lines, Age, Cache-Status and
  // Gatehouse's fields; a hit that falls back to writeHead (because a field was set on the
  // response before) has it among the stored fields, before Cache-Status.
  assert.ok(position(hit.rawHeaders, 'content-length') > position(hit.rawHeaders, 'cache-status'), 'the hit went out on its pre-serialised head');
  const notModified = await get('/cached', { 'if-none-match': '"/cached"' });
  assert.equal(notModified.status, 304);
  assert.equal(count(notModified.rawHeaders, STS), 1, 'a 304 from the cache');
  assert.equal(notModified.headers[STS], EXPECTED);
  const failed = await get('/cached', { 'if-match': '"other"' });
  assert.equal(failed.status, 412);
  assert.equal(failed.headers[STS], EXPECTED, 'a 412 from the cache');
  const unsatisfiable = await get('/cached', { range: 'bytes=100-' });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers[STS], EXPECTED, 'a 416 from the cache');

  await get('/cached/own');
  const ownHit = await get('/cached/own');
  assert.equal(ownHit.headers['cache-status'], 'gatehouse; hit');
  assert.equal(count(ownHit.rawHeaders, STS), 1, "a hit of a stored answer with the backend's field: that one alone");
  assert.equal(ownHit.headers[STS], 'max-age=0');
  const ownNotModified = await get('/cached/own', { 'if-none-match': '"/cached/own"' });
  assert.equal(ownNotModified.status, 304);
  assert.equal(count(ownNotModified.rawHeaders, STS), 1);
  assert.equal(ownNotModified.headers[STS], 'max-age=0', "a 304 keeps the backend's field the 200 had");

  const session = await h2Session(t, origin, { ca: ca.cert, servername: 'site.test' });
  // The same cache key as the HTTP/1.1 requests (node's client would say site.test, its servername).
  const authority = new URL(origin).host;
  const h2Hit = await h2Request(session, { ':path': '/cached', ':authority': authority });
  assert.equal(h2Hit.headers['cache-status'], 'gatehouse; hit');
  assert.equal(h2Hit.headers[STS], EXPECTED, 'an HTTP/2 hit');
  const h2NotModified = await h2Request(session, { ':path': '/cached', ':authority': authority, 'if-none-match': '"/cached"' });
  assert.equal(h2NotModified.status, 304);
  assert.equal(h2NotModified.headers[STS], EXPECTED, 'an HTTP/2 304 from the cache');
  assert.equal((await h2Request(session, { ':path': '/cached/own', ':authority': authority })).headers[STS], 'max-age=0');

  // The same cache key again: the host the TLS requests gave.
  const plainHit = await request(`${plain}/cached`, { headers: { host: authority } });
  assert.equal(plainHit.headers['cache-status'], 'gatehouse; hit');
  assert.equal(count(plainHit.rawHeaders, STS), 0, 'a plain listener adds none to hits');
  const plainNotModified = await request(`${plain}/cached`, { headers: { host: authority, 'if-none-match': '"/cached"' } });
  assert.equal(plainNotModified.status, 304);
  assert.equal(count(plainNotModified.rawHeaders, STS), 0);
  assert.equal(backendRequests(), before + 1, 'every answer after the first of each path came from the cache');
});

test('hsts and redirect_https are refused where they cannot apply', () => {
  assert.throws(() => configFromObject({ ...simpleProxyConfig(['http://127.0.0.1:1']), listen: [{ address: '127.0.0.1:0', hsts: true }] }), /hsts: only applies to a listener with tls/);
  assert.throws(
    () => configFromObject({ ...simpleProxyConfig(['http://127.0.0.1:1']), listen: [{ address: '127.0.0.1:0', redirect_https: true, tls: { certificates: [{ cert: 'a', key: 'b' }] } }] }),
    /redirect_https: only applies to a plain \(non-TLS\) listener/,
  );
});
