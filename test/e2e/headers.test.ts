/**
 * Hiding the backend: hop-by-hop headers stop at the proxy in both directions (RFC 9110 §7.6.1),
 * forwarding headers tell the backend who the client is, and nothing the backend says about
 * itself (software, address, cookie domain) reaches the client.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test, type TestContext } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startBackend, type Handler } from '../helpers/backend.ts';
import { rawRequest, request } from '../helpers/http.ts';
import { proxyToEcho, simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

interface Echoed {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
}

/** Names of the headers the backend received, lower case. */
function namesOf(seen: Echoed): string[] {
  return seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

/** A backend answering 200 with these headers and body "ok". */
function answering(headers: Record<string, string | string[]>, status = 200): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '2', ...headers });
    res.end('ok');
  };
}

/** One echo backend behind a proxy with `extra` config merged in. */
async function echoBehindProxy(
  t: TestContext,
  extra: Partial<ConfigInput> = {},
): Promise<{ proxyUrl: string; proxyPort: number; backendPort: number }> {
  const { backend, proxy } = await proxyToEcho(t, undefined, extra);
  return { proxyUrl: proxy.url, proxyPort: proxy.port, backendPort: backend.port };
}

// --- hop-by-hop headers ---------------------------------------------------------------------

test('hop-by-hop request headers, and the headers Connection lists, do not reach the backend', async (t) => {
  const { proxyPort } = await echoBehindProxy(t);
  const raw = await rawRequest(
    proxyPort,
    'GET /hop HTTP/1.1\r\n' +
      'Host: public.example\r\n' +
      'Connection: x-secret, close\r\n' +
      'X-Secret: 1\r\n' +
      'Keep-Alive: timeout=30\r\n' +
      'Proxy-Authorization: Basic dXNlcjpwYXNz\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'TE: trailers\r\n' +
      'X-Kept: yes\r\n' +
      '\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echoed;
  const names = namesOf(seen);
  for (const name of ['x-secret', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te']) {
    assert.ok(!names.includes(name), `${name} must not be forwarded`);
  }
  assert.ok(!names.includes('connection') || !/x-secret/i.test(String(seen.headers.connection)), 'the client Connection is not forwarded');
  assert.equal(seen.headers['x-kept'], 'yes', 'end-to-end headers pass');
});

test('a client cannot make the proxy drop Host by listing it in Connection', async (t) => {
  const { proxyPort } = await echoBehindProxy(t);
  const raw = await rawRequest(proxyPort, 'GET / HTTP/1.1\r\nHost: public.example\r\nConnection: host, close\r\n\r\n');
  const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echoed;
  assert.equal(seen.headers.host, 'public.example', 'the backend sees the Host the route was chosen by, not its own address');
});

test('a chunked request reaches the backend with its own framing, not the client Transfer-Encoding line', async (t) => {
  const { proxyPort } = await echoBehindProxy(t);
  const raw = await rawRequest(
    proxyPort,
    'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echoed & { body: string };
  assert.equal(seen.body, 'hello');
  const te = namesOf(seen).filter((n) => n === 'transfer-encoding').length;
  assert.ok(te <= 1, 'at most the transport own Transfer-Encoding line');
});

test('hop-by-hop response headers, and the headers Connection lists, do not reach the client', async (t) => {
  const backend = await startBackend(
    t,
    answering({
      Connection: 'X-Internal',
      'x-internal': '1',
      'Keep-Alive': 'timeout=99, max=7',
      'proxy-authenticate': 'Basic realm="backend"',
      'proxy-x-debug': 'on',
      'x-public': 'yes',
    }),
  );
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'ok');
  assert.equal(res.headers['x-internal'], undefined);
  assert.equal(res.headers['proxy-authenticate'], undefined);
  assert.equal(res.headers['proxy-x-debug'], undefined);
  assert.notEqual(res.headers['keep-alive'], 'timeout=99, max=7', 'the backend Keep-Alive is not passed on');
  assert.doesNotMatch(String(res.headers.connection), /x-internal/i, 'the backend Connection is not passed on');
  assert.equal(res.headers['x-public'], 'yes');
});

test('a response with Upgrade outside a protocol switch does not pass the Upgrade header on', async (t) => {
  const backend = await startBackend(t, answering({ upgrade: 'h2c', connection: 'upgrade' }));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.upgrade, undefined);
  assert.doesNotMatch(String(res.headers.connection ?? ''), /upgrade/i, 'nor Connection: upgrade');
  assert.equal(res.body, 'ok');
});

// --- forwarding headers ---------------------------------------------------------------------

test('X-Forwarded-For, -Proto and -Host are added', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t);
  const res = await request(`${proxyUrl}/`, { headers: { host: 'public.example:8443' } });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-host'], 'public.example:8443');
  assert.equal(seen.headers.forwarded, undefined, 'Forwarded is off by default');
});

test('an untrusted client X-Forwarded-* and Forwarded are replaced, not trusted', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t);
  const res = await request(`${proxyUrl}/`, {
    headers: {
      host: 'public.example',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=203.0.113.9',
    },
  });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-host'], 'public.example');
  assert.equal(seen.headers.forwarded, undefined);
  assert.equal(namesOf(seen).filter((n) => n === 'x-forwarded-for').length, 1, 'one X-Forwarded-For line');
});

test('a trusted proxy X-Forwarded-For is appended to, and its -Proto and -Host kept', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t, { trusted_proxies: ['127.0.0.0/8'] });
  const res = await request(`${proxyUrl}/`, {
    headers: {
      host: 'inner.example',
      'x-forwarded-for': '203.0.113.9, 198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'outer.example',
    },
  });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 198.51.100.7, 127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-forwarded-host'], 'outer.example');
});

test('a trusted proxy peer without X-Forwarded-For gets a fresh one', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t, { trusted_proxies: ['127.0.0.1'] });
  const res = await request(`${proxyUrl}/`);
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
});

test('forwarded: true adds an RFC 7239 Forwarded header', async (t) => {
  const { proxyUrl, proxyPort } = await echoBehindProxy(t, { forwarded: { forwarded: true } });
  const res = await request(`${proxyUrl}/`, { headers: { forwarded: 'for=203.0.113.9' } });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${proxyPort}"`);
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-* stay on');
});

test('forwarded: true with a trusted peer appends to its Forwarded header', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t, { forwarded: { forwarded: true }, trusted_proxies: ['127.0.0.0/8'] });
  const res = await request(`${proxyUrl}/`, { headers: { host: 'site.example', forwarded: 'for=203.0.113.9;proto=https' } });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers.forwarded, 'for=203.0.113.9;proto=https, for=127.0.0.1;proto=http;host=site.example');
});

test('x_forwarded: false adds no forwarding header', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t, { forwarded: { x_forwarded: false } });
  const res = await request(`${proxyUrl}/`);
  const seen = JSON.parse(res.body) as Echoed;
  const names = namesOf(seen);
  for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']) {
    assert.ok(!names.includes(name), `${name} must not be added`);
  }
});

// --- backend identity -----------------------------------------------------------------------

test('Server and X-Powered-By are removed from responses by default', async (t) => {
  // Mixed case on the wire: the names are compared case-insensitively.
  const backend = await startBackend(t, answering({ Server: 'Apache/2.4.1 (Unix)', 'X-Powered-By': 'PHP/5.6', 'x-app': 'kept' }));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`);
  assert.equal(res.headers.server, undefined);
  assert.equal(res.headers['x-powered-by'], undefined);
  assert.equal(res.headers['x-app'], 'kept');
});

test('hide_backend.remove_response_headers replaces the default list', async (t) => {
  const backend = await startBackend(t, answering({ server: 'nginx', 'x-powered-by': 'Express', 'x-backend-id': 'node-7' }));
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    hide_backend: { remove_response_headers: ['X-Backend-Id'] },
  });
  const res = await request(`${proxy.url}/`);
  assert.equal(res.headers['x-backend-id'], undefined);
  assert.equal(res.headers.server, 'nginx', 'no longer in the list, so kept');
  assert.equal(res.headers['x-powered-by'], 'Express');
});

// --- Location and Content-Location ----------------------------------------------------------

test('Location and Content-Location naming the backend are rewritten to the host the client used', async (t) => {
  let backendPort = 0;
  const backend = await startBackend(t, (req, res) => {
    res.writeHead(302, {
      location: `http://127.0.0.1:${backendPort}/login?next=%2F${req.url === '/q' ? '#frag' : ''}`,
      'content-location': `http://127.0.0.1:${backendPort}/docs/1`,
      'content-length': '0',
    });
    res.end();
  });
  backendPort = backend.port;
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));

  const direct = await request(`${proxy.url}/`);
  assert.equal(direct.status, 302);
  assert.equal(direct.headers.location, `http://127.0.0.1:${proxy.port}/login?next=%2F`);
  assert.equal(direct.headers['content-location'], `http://127.0.0.1:${proxy.port}/docs/1`);

  const named = await request(`${proxy.url}/q`, { headers: { host: 'www.example.com' } });
  assert.equal(named.headers.location, 'http://www.example.com/login?next=%2F#frag');
  assert.equal(named.headers['content-location'], 'http://www.example.com/docs/1');
});

test('Location naming the backend in another case is still rewritten', async (t) => {
  let backendPort = 0;
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(301, { location: `HTTP://127.0.0.1:${backendPort}/x`, 'content-length': '0' });
    res.end();
  });
  backendPort = backend.port;
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`, { headers: { host: 'site.example' } });
  assert.equal(res.headers.location, 'http://site.example/x');
});

test('Location pointing elsewhere, or relative, is left alone', async (t) => {
  let backendPort = 0;
  const targets = new Map<string, () => string>([
    ['/other', () => 'https://login.example.com/start'],
    ['/other-port', () => `http://127.0.0.1:${backendPort + 1}/x`],
    ['/relative', () => '/next/page?x=1'],
    ['/dot', () => '../up'],
    ['/scheme-relative', () => `//127.0.0.1:${backendPort}/x`],
  ]);
  const backend = await startBackend(t, (req, res) => {
    res.writeHead(302, { location: targets.get(req.url ?? '')?.() ?? '/', 'content-length': '0' });
    res.end();
  });
  backendPort = backend.port;
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  for (const [path, target] of targets) {
    const res = await request(`${proxy.url}${path}`);
    assert.equal(res.headers.location, target(), path);
  }
});

test('hide_backend.rewrite_location: false passes Location unchanged', async (t) => {
  let backendPort = 0;
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${backendPort}/x`, 'content-location': `http://127.0.0.1:${backendPort}/y`, 'content-length': '0' });
    res.end();
  });
  backendPort = backend.port;
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), hide_backend: { rewrite_location: false } });
  const res = await request(`${proxy.url}/`);
  assert.equal(res.headers.location, `http://127.0.0.1:${backend.port}/x`);
  assert.equal(res.headers['content-location'], `http://127.0.0.1:${backend.port}/y`);
});

test('Location naming any server of the upstream is rewritten', async (t) => {
  const ports: number[] = [];
  const handler: Handler = (_req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${ports[1]}/from-b`, 'content-length': '0' });
    res.end();
  };
  const a = await startBackend(t, handler);
  const b = await startBackend(t, handler);
  ports.push(a.port, b.port);
  const proxy = await startProxy(t, simpleProxyConfig([a.url, b.url]));
  for (let i = 0; i < 2; i++) {
    const res = await request(`${proxy.url}/`, { headers: { host: 'site.example' } });
    assert.equal(res.headers.location, 'http://site.example/from-b');
  }
});

// --- Set-Cookie Domain ----------------------------------------------------------------------

test('Set-Cookie Domain naming the backend becomes the public host name; other domains pass', async (t) => {
  const backend = await startBackend(
    t,
    answering({
      'set-cookie': [
        'sid=abc; Domain=127.0.0.1; Path=/; HttpOnly',
        'pref=1; domain=.127.0.0.1',
        'ad=2; Domain=tracker.example; Path=/',
        'plain=3; Path=/',
      ],
    }),
  );
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`, { headers: { host: 'www.example.com:8080' } });
  assert.deepEqual(res.headers['set-cookie'], [
    'sid=abc; Domain=www.example.com; Path=/; HttpOnly',
    'pref=1; domain=www.example.com',
    'ad=2; Domain=tracker.example; Path=/',
    'plain=3; Path=/',
  ]);
});

test('a single Set-Cookie is rewritten too, and rewrite_cookie_domain: false turns it off', async (t) => {
  const backend = await startBackend(t, answering({ 'set-cookie': 'sid=abc; Domain=127.0.0.1' }));
  const on = await startProxy(t, simpleProxyConfig([backend.url]));
  const off = await startProxy(t, { ...simpleProxyConfig([backend.url]), hide_backend: { rewrite_cookie_domain: false } });
  const rewritten = await request(`${on.url}/`, { headers: { host: 'site.example' } });
  assert.deepEqual(rewritten.headers['set-cookie'], ['sid=abc; Domain=site.example']);
  const kept = await request(`${off.url}/`, { headers: { host: 'site.example' } });
  assert.deepEqual(kept.headers['set-cookie'], ['sid=abc; Domain=127.0.0.1']);
});

// --- per-route header edits -----------------------------------------------------------------

test('request_headers set, add and remove change what the backend receives', async (t) => {
  const { proxy } = await proxyToEcho(t, [
    {
      match: { path_prefix: '/edit' },
      upstream: 'app',
      request_headers: {
        set: { 'X-Env': 'prod', 'X-Replaced': 'new' },
        add: { 'X-Tag': 'proxy' },
        remove: ['X-Drop', 'Cookie'],
      },
    },
    { match: {}, upstream: 'app' },
  ]);
  const headers = { 'x-replaced': 'old', 'x-tag': 'client', 'x-drop': '1', cookie: 'a=1', 'x-other': 'kept' };
  const res = await request(`${proxy.url}/edit`, { headers });
  const seen = JSON.parse(res.body) as Echoed;
  assert.equal(seen.headers['x-env'], 'prod');
  assert.equal(seen.headers['x-replaced'], 'new');
  assert.equal(seen.headers['x-tag'], 'client, proxy', 'add keeps the client value');
  assert.equal(seen.headers['x-drop'], undefined);
  assert.equal(seen.headers.cookie, undefined);
  assert.equal(seen.headers['x-other'], 'kept');

  const untouched = JSON.parse((await request(`${proxy.url}/plain`, { headers })).body) as Echoed;
  assert.equal(untouched.headers['x-drop'], '1', 'edits belong to their route only');
  assert.equal(untouched.headers['x-env'], undefined);
});

test('request_headers can remove the forwarding headers the proxy adds', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t, {
    routes: [{ match: {}, upstream: 'app', request_headers: { remove: ['X-Forwarded-For'] } }],
  });
  const seen = JSON.parse((await request(`${proxyUrl}/`)).body) as Echoed;
  assert.equal(seen.headers['x-forwarded-for'], undefined);
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
});

test('response_headers set, add and remove change what the client receives', async (t) => {
  const backend = await startBackend(
    t,
    answering({ 'x-frame-options': 'ALLOW', 'x-debug': 'trace-1', 'set-cookie': 'a=1', 'cache-control': 'no-cache' }),
  );
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      {
        match: {},
        upstream: 'app',
        response_headers: {
          set: { 'X-Frame-Options': 'DENY', 'Strict-Transport-Security': 'max-age=600' },
          add: { 'Set-Cookie': 'b=2', Vary: 'Accept' },
          remove: ['X-Debug'],
        },
      },
    ],
  });
  const res = await request(`${proxy.url}/`);
  assert.equal(res.headers['x-frame-options'], 'DENY');
  assert.equal(res.headers['strict-transport-security'], 'max-age=600');
  assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(res.headers.vary, 'Accept');
  assert.equal(res.headers['x-debug'], undefined);
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.body, 'ok');
});

test('response_headers apply to redirect and respond routes', async (t) => {
  const proxy = await startProxy(t, {
    routes: [
      { match: { path: '/go' }, redirect: { to: 'https://example.com/' }, response_headers: { set: { 'X-Route': 'redirect' } } },
      {
        match: {},
        respond: { status: 200, body: 'hi' },
        response_headers: { set: { 'Content-Type': 'text/html' }, add: { 'X-Route': 'respond' } },
      },
    ],
  });
  const go = await request(`${proxy.url}/go`);
  assert.equal(go.status, 302);
  assert.equal(go.headers['x-route'], 'redirect');
  const hi = await request(`${proxy.url}/`);
  assert.equal(hi.headers['x-route'], 'respond');
  assert.equal(hi.headers['content-type'], 'text/html');
  assert.equal(hi.body, 'hi');
});

// --- intermediary duties (RFC 9110 §7.6) -------------------------------------------------------

test('Via: added to forwarded requests after the client\'s own, naming the protocol received and no backend', async (t) => {
  const { proxyUrl } = await echoBehindProxy(t);
  const seen = JSON.parse((await request(`${proxyUrl}/`, { headers: { via: '1.0 fred' } })).body) as Echoed;
  const vias = seen.rawHeaders.filter((_, i) => i > 0 && seen.rawHeaders[i - 1]?.toLowerCase() === 'via');
  assert.deepEqual(vias, ['1.0 fred', '1.1 gatehouse']);
  const plain = await request(`${proxyUrl}/`);
  assert.equal(plain.headers.via, undefined, 'responses carry no Via by default');
});

test('Via: a pseudonym, on responses too, or off', async (t) => {
  const backend = await startBackend(t, answering({ via: '1.1 internal-cache' }));
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), forwarded: { via: { response: true, pseudonym: 'edge' } } });
  const res = await request(`${proxy.url}/`);
  assert.equal(res.headers.via, '1.1 internal-cache, 1.1 edge');
  assert.equal(backend.requests[0]?.headers.via, '1.1 edge');
  const { proxyUrl } = await echoBehindProxy(t, { forwarded: { via: { request: false } } });
  assert.ok(!namesOf(JSON.parse((await request(`${proxyUrl}/`)).body) as Echoed).includes('via'));
  assert.throws(() => configFromObject({ ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0' }], forwarded: { via: { pseudonym: 'two words' } } } as ConfigInput), /forwarded\.via\.pseudonym: must be a token/);
});

test('Max-Forwards: OPTIONS and TRACE at 0 are answered by the proxy; above 0 forwarded one lower; other methods untouched', async (t) => {
  const { proxyUrl, proxyPort } = await echoBehindProxy(t);
  const options = await request(`${proxyUrl}/x`, { method: 'OPTIONS', headers: { 'max-forwards': '0' } });
  assert.equal(options.status, 200);
  assert.match(String(options.headers.allow), /GET, HEAD/);
  assert.equal(options.body, '');
  const trace = await rawRequest(proxyPort, 'TRACE /t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nCookie: secret=1\r\nX-Probe: yes\r\nConnection: close\r\n\r\n');
  assert.match(trace, /^HTTP\/1\.1 200 /);
  assert.match(trace, /content-type: message\/http/i);
  assert.match(trace, /\r\n\r\nTRACE \/t HTTP\/1\.1\r\nHost: x\r\nMax-Forwards: 0\r\n/);
  assert.match(trace, /X-Probe: yes/);
  assert.doesNotMatch(trace, /secret/, 'fields that may hold secrets are not reflected');
  const forwarded = JSON.parse((await request(`${proxyUrl}/x`, { method: 'OPTIONS', headers: { 'max-forwards': '3' } })).body) as Echoed;
  assert.equal(forwarded.method, 'OPTIONS');
  assert.equal(forwarded.headers['max-forwards'], '2');
  const get = JSON.parse((await request(`${proxyUrl}/x`, { headers: { 'max-forwards': '0' } })).body) as Echoed;
  assert.equal(get.headers['max-forwards'], '0', 'only OPTIONS and TRACE are concerned');
});
