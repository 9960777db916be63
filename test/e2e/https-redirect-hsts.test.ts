/** A plain listener's redirect_https (308 to https, ACME challenges excepted) and a TLS listener's hsts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { configFromObject } from '../../src/config/load.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { h2Request, h2Session, httpsGet } from '../helpers/h2.ts';
import { rawRequest, request } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

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

test('hsts: Strict-Transport-Security on every answer of a TLS listener, over HTTP/1.1 and HTTP/2; the backend may set its own', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/own') res.setHeader('strict-transport-security', 'max-age=0');
    res.end('ok');
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      { match: { path: '/moved' }, redirect: { to: '/new' } },
      { match: { path_prefix: '/' }, upstream: 'app' },
    ],
    listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] }, hsts: { max_age: '730d', include_subdomains: true, preload: true } }],
  } as ConfigInput);
  const origin = `https://127.0.0.1:${proxy.port}`;
  const expected = 'max-age=63072000; includeSubDomains; preload';
  const forwarded = await httpsGet(`${origin}/`, ca.cert, { servername: 'site.test' });
  assert.equal(forwarded.headers['strict-transport-security'], expected);
  const redirected = await httpsGet(`${origin}/moved`, ca.cert, { servername: 'site.test' });
  assert.equal(redirected.status, 302);
  assert.equal(redirected.headers['strict-transport-security'], expected, 'answers of the proxy itself carry it too');
  const refused = await httpsGet(`${origin}/`, ca.cert, { servername: 'site.test', headers: { host: 'a b' } });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers['strict-transport-security'], expected, 'refused requests too');
  const websocket = { connection: 'upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  const refusedHandshake = await httpsGet(`${origin}/`, ca.cert, { servername: 'site.test', headers: { ...websocket, host: 'a b' } });
  assert.equal(refusedHandshake.status, 400);
  assert.equal(refusedHandshake.headers['strict-transport-security'], expected, 'refused WebSocket handshakes too (the same admission step)');
  const own = await httpsGet(`${origin}/own`, ca.cert, { servername: 'site.test' });
  assert.deepEqual(own.headers['strict-transport-security'], 'max-age=0', "the backend's own field takes the place of the listener's");
  const session = await h2Session(t, origin, { ca: ca.cert, servername: 'site.test' });
  const h2 = await h2Request(session, { ':path': '/' });
  assert.equal(h2.status, 200);
  assert.equal(h2.headers['strict-transport-security'], expected);
});

test('hsts and redirect_https are refused where they cannot apply', () => {
  assert.throws(() => configFromObject({ ...simpleProxyConfig(['http://127.0.0.1:1']), listen: [{ address: '127.0.0.1:0', hsts: true }] }), /hsts: only applies to a listener with tls/);
  assert.throws(
    () => configFromObject({ ...simpleProxyConfig(['http://127.0.0.1:1']), listen: [{ address: '127.0.0.1:0', redirect_https: true, tls: { certificates: [{ cert: 'a', key: 'b' }] } }] }),
    /redirect_https: only applies to a plain \(non-TLS\) listener/,
  );
});
