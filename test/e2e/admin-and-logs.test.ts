import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { connect } from 'node:net';
import { test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { rawRequest, request, waitFor } from '../helpers/http.ts';
import { collectingLogger } from '../helpers/logs.ts';
import { freePort, readLines, tempFile } from '../helpers/process.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

test('the admin listener reports servers and their counters as JSON', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), admin: { address: '127.0.0.1:0' } });
  await request(`${proxy.url}/`);
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  assert.equal((await request(`${admin}/healthz`)).status, 200);
  const status = JSON.parse((await request(`${admin}/status`)).body);
  const [server] = status.upstreams.app.servers;
  assert.equal(status.upstreams.app.servers.length, 1);
  assert.deepEqual(
    { url: server.url, weight: server.weight, state: server.state, in_flight: server.in_flight, requests: server.requests, failures: server.failures },
    { url: backend.url, weight: 1, state: 'up', in_flight: 0, requests: 1, failures: 0 },
  );
  assert.ok(server.ewma_ms > 0, 'the latency average is measured');
  assert.equal(server.last_check, null, 'no active checks are configured');
  assert.equal((await request(`${admin}/nope`)).status, 404);
});

test('the JSON access log has method, path, status, bytes, server and timings', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('access.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path } });
  const before = Date.now();
  const res = await request(`${proxy.url}/logged?q=1`, { headers: { 'user-agent': 'test-agent', host: 'site.example' } });
  const [line] = await readLines(path, 1);
  const entry = JSON.parse(line as string);
  assert.equal(entry.method, 'GET');
  assert.equal(entry.path, '/logged?q=1');
  assert.equal(entry.status, 200);
  assert.equal(entry.bytes, Buffer.byteLength(res.body));
  assert.equal(entry.upstream, 'app');
  assert.equal(entry.server, `127.0.0.1:${backend.port}`);
  assert.equal(entry.remote, '127.0.0.1');
  assert.ok(entry.duration_ms >= entry.upstream_ms && entry.upstream_ms >= 0);
  assert.equal(entry.host, 'site.example', 'the Host the client asked for');
  assert.equal(typeof entry.route, 'string', 'the route that took the request');
  assert.match(entry.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'ISO 8601 with milliseconds');
  const time = Date.parse(entry.time);
  assert.ok(time >= before && time <= Date.now(), `the time of the request: ${entry.time}`);
  assert.equal(entry.upstream_ms > 0, true, 'the time to the upstream answer is measured');
  // Fields that only appear when they say something.
  assert.equal(entry.tries, undefined, 'one try');
  assert.equal(entry.client, undefined, 'the peer is the client');
  assert.equal(entry.error, undefined);
});

test('behind a trusted proxy, once access rules resolve the client, the JSON log names it beside the peer', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('client.log', '');
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', access: { deny: ['192.0.2.0/24'] } }],
    trusted_proxies: ['127.0.0.1'],
    access_log: { path },
  });
  await request(`${proxy.url}/via`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  const [line] = await readLines(path, 1);
  const entry = JSON.parse(line as string);
  assert.equal(entry.remote, '127.0.0.1');
  assert.equal(entry.client, '203.0.113.9');
});

test('the combined access log format', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('combined.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path, format: 'combined' } });
  await request(`${proxy.url}/c`, { headers: { 'user-agent': 'agent/1', referer: 'http://ref/' } });
  const [line] = await readLines(path, 1);
  assert.match(
    line as string,
    /^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/c HTTP\/1\.1" 200 \d+ "http:\/\/ref\/" "agent\/1" [\d.]+ms 127\.0\.0\.1:\d+$/,
  );
});

test('the extended format: combined, then host, route, upstream and total time, server, trace and request ids', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('extended.log', '');
  const proxy = await startProxy(t, {
    access_log: { path, format: 'extended' },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ name: 'main', match: { path_prefix: '/' }, upstream: 'app' }],
  });
  await request(`${proxy.url}/e?x=1`, { headers: { 'user-agent': 'agent/1', host: 'site.example:8080' } });
  await rawRequest(proxy.port, 'GET /nohost HTTP/1.0\r\n\r\n');
  const [line, noHost] = await readLines(path, 2);
  const match = /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/e\?x=1 HTTP\/1\.1" 200 (\d+) "-" "agent\/1" "site\.example" "main" ([\d.]+)ms ([\d.]+)ms 127\.0\.0\.1:(\d+) ([0-9a-f]{32}) "([0-9a-f]{32})"$/.exec(line as string);
  assert.ok(match !== null, line);
  assert.ok(Number(match[3]) >= Number(match[2]), 'the total time includes the upstream time');
  assert.equal(Number(match[4]), backend.port);
  assert.equal(match[6], match[5], 'a trace started here gives its id to the request too');
  assert.match(noHost as string, /"GET \/nohost HTTP\/1\.0" \d+ \d+ "-" "-" "-" "main" /, noHost);
});

test('answers without a body log 0 bytes: HEAD, 204, 304, compressed or not', async (t) => {
  const body = 'x'.repeat(2000);
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { etag: '"a"' }).end();
    else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, etag: '"a"' }).end(body);
  });
  const path = await tempFile('bodiless.log', '');
  const proxy = await startProxy(t, {
    access_log: { path },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', compress: { enabled: true } }],
  });
  const gzip = { 'accept-encoding': 'gzip' };
  await request(`${proxy.url}/head`, { method: 'HEAD' });
  await request(`${proxy.url}/head-gzip`, { method: 'HEAD', headers: gzip });
  await request(`${proxy.url}/204`, { headers: gzip });
  await request(`${proxy.url}/304`, { headers: { ...gzip, 'if-none-match': '"a"' } });
  await request(`${proxy.url}/get`);
  const lines = (await readLines(path, 5)).map((l) => JSON.parse(l) as { path: string; status: number; bytes: number });
  assert.deepEqual(
    lines.map((l) => [l.path, l.status, l.bytes]),
    [['/head', 200, 0], ['/head-gzip', 200, 0], ['/204', 204, 0], ['/304', 304, 0], ['/get', 200, 2000]],
  );
});

test('a request with no route is logged as 404 and a failed upstream with its error code', async (t) => {
  const path = await tempFile('errors.log', '');
  const proxy = await startProxy(t, {
    access_log: { path },
    upstreams: { dead: { servers: [{ url: 'http://127.0.0.1:1' }] } },
    routes: [{ match: { path: '/dead' }, upstream: 'dead' }],
  });
  assert.equal((await request(`${proxy.url}/nowhere`)).status, 404);
  assert.equal((await request(`${proxy.url}/dead`)).status, 502);
  const lines = (await readLines(path, 2)).map((l) => JSON.parse(l));
  assert.equal(lines[0].status, 404);
  assert.equal(lines[1].status, 502);
  assert.equal(lines[1].error, 'CONNECT_REFUSED');
  assert.equal(lines[0].path, '/nowhere');
  assert.equal(lines[0].route, undefined, 'no route took it');
  assert.equal(lines[0].server, undefined);
  assert.equal(lines[0].error, 'NO_ROUTE');
  assert.equal(lines[1].path, '/dead');
  assert.equal(lines[1].upstream, 'dead');
  assert.equal(lines[1].server, '127.0.0.1:1', 'the server that failed');
});

test('a request retried on another server is logged with its tries and the server that answered', async (t) => {
  const { closedPort } = await import('../helpers/backend.ts');
  const live = await startBackend(t, echo());
  const path = await tempFile('retried.log', '');
  const proxy = await startProxy(t, {
    access_log: { path },
    upstreams: { app: { servers: [{ url: `http://127.0.0.1:${await closedPort()}` }, { url: live.url }] } },
    routes: [{ match: {}, upstream: 'app' }],
  });
  assert.equal((await request(`${proxy.url}/first`)).status, 200, 'the refused try is retried on the live server');
  const [line] = await readLines(path, 1);
  const entry = JSON.parse(line as string);
  assert.equal(entry.tries, 2);
  assert.equal(entry.server, `127.0.0.1:${live.port}`);
  assert.equal(entry.status, 200);
});

test('a client that leaves before its answer is logged with status 499', async (t) => {
  const backend = await startBackend(t, (req) => req.resume());
  const path = await tempFile('left.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path } });
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write('GET /left HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => backend.requests.length === 1, 2000, 'the request to reach the backend');
  socket.destroy();
  const [line] = await readLines(path, 1);
  const entry = JSON.parse(line as string);
  assert.equal(entry.path, '/left');
  assert.equal(entry.status, 499);
});

test('log lines are ASCII: client strings are escaped (JSON as JSON, combined with \\xHH as nginx does)', async (t) => {
  const backend = await startBackend(t, echo());
  const jsonPath = await tempFile('ascii.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path: jsonPath } });
  // llhttp refuses bytes beyond ASCII in the target, not in header values (read as latin1).
  const target = Buffer.from('/q?a="x"\\', 'latin1');
  const head = (path: Buffer): Buffer =>
    Buffer.concat([Buffer.from('GET '), path, Buffer.from(' HTTP/1.1\r\nhost: x\r\nuser-agent: a "quoted" \\ \u00ff\r\nconnection: close\r\n\r\n', 'latin1')]);
  await rawRequest(proxy.port, head(target));
  const [line] = await readLines(jsonPath, 1);
  assert.match(line as string, /^[\x20-\x7e]+$/);
  assert.equal(JSON.parse(line as string).path, '/q?a="x"\\');

  const combinedPath = await tempFile('ascii-combined.log', '');
  await proxy.gatehouse.reload(configFromObject({ ...simpleProxyConfig([backend.url]), listen: proxy.gatehouse.config.listen, access_log: { path: combinedPath, format: 'combined' } }));
  await rawRequest(proxy.port, head(target));
  const [combined] = await readLines(combinedPath, 1);
  assert.match(combined as string, /^[\x20-\x7e]+$/);
  assert.ok((combined as string).includes('"GET /q?a=\\x22x\\x22\\x5C HTTP/1.1"'), combined);
  assert.ok((combined as string).includes('"a \\x22quoted\\x22 \\x5C \\xFF"'), combined);
});

test('a reload whose access log cannot be opened is refused, and the old log goes on', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('kept.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path } });
  const bad = configFromObject({ ...simpleProxyConfig([backend.url]), listen: proxy.gatehouse.config.listen, access_log: { path: '/dev/null/not-a-dir/access.log' } });
  await assert.rejects(proxy.gatehouse.reload(bad), /access_log: cannot open \/dev\/null\/not-a-dir\/access\.log/);
  await request(`${proxy.url}/after`);
  const [line] = await readLines(path, 1);
  assert.equal(JSON.parse(line as string).path, '/after');
});

test('a request still running on a listener a reload removed is logged to the new log, never to a reused descriptor', async (t) => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') void held.then(() => res.end('slow'));
    else res.end('fast');
  });
  const oldPath = await tempFile('old.log', '');
  const newPath = await tempFile('new.log', '');
  const bystander = await tempFile('bystander.txt', '');
  const second = await freePort();
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path: oldPath } });
  await proxy.gatehouse.reload(configFromObject({ ...simpleProxyConfig([backend.url]), listen: [...proxy.gatehouse.config.listen, { address: `127.0.0.1:${second}` }], access_log: { path: oldPath } }));
  const slow = request(`http://127.0.0.1:${second}/slow`);
  await waitFor(() => proxy.gatehouse.addresses.length === 2, 2000, 'both listeners');
  await new Promise((resolve) => setTimeout(resolve, 100));
  // The second listener goes, and the log moves: the old file is closed.
  await proxy.gatehouse.reload(configFromObject({ ...simpleProxyConfig([backend.url]), listen: proxy.gatehouse.config.listen.slice(0, 1), access_log: { path: newPath } }));
  // Whatever opens next may get the old log's descriptor number.
  const fd = openSync(bystander, 'w');
  t.after(() => closeSync(fd));
  release();
  assert.equal((await slow).body, 'slow');
  const [line] = await readLines(newPath, 1);
  assert.equal(JSON.parse(line as string).path, '/slow');
  assert.equal(await readFile(bystander, 'utf8'), '');
});

test('logrotate: after the file is renamed, a reload with the same configuration opens it again', async (t) => {
  const backend = await startBackend(t, echo());
  const path = await tempFile('rotated.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path } });
  await request(`${proxy.url}/before`);
  await readLines(path, 1);
  await rename(path, `${path}.1`);
  await proxy.gatehouse.reload(proxy.gatehouse.config);
  await request(`${proxy.url}/after`);
  const [line] = await readLines(path, 1);
  assert.equal(JSON.parse(line as string).path, '/after');
  assert.equal((await readFile(`${path}.1`, 'utf8')).trim().split('\n').length, 1, 'the rotated file keeps only the lines before');
});

test('a reload logs what it changed: routes, upstreams, servers and other settings, by name', async (t) => {
  const { logger, lines } = collectingLogger({ level: 'info', base: null });
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const config = (servers: string[], extra: object = {}) =>
    configFromObject({
      listen: [{ address: '127.0.0.1:0' }],
      access_log: { enabled: false },
      upstreams: { app: { servers: servers.map((url) => ({ url })) } },
      routes: [{ name: 'main', match: {}, upstream: 'app' }],
      ...extra,
    });
  const gatehouse = await Gatehouse.start(config([a.url]), { logger });
  t.after(() => gatehouse.stop(100));
  await gatehouse.reload(config([b.url], { listen: gatehouse.config.listen, shutdown_timeout: '5s' }));
  const reloaded = lines.find((l) => l['msg'] === 'configuration reloaded');
  assert.ok(reloaded !== undefined, 'the reload line');
  assert.deepEqual(reloaded['routes'], { added: [], removed: [], changed: [] });
  assert.deepEqual(reloaded['upstreams'], { added: [], removed: [], changed: [] });
  assert.deepEqual(reloaded['servers'], { added: [`app ${b.url}`], removed: [`app ${a.url}`], changed: [] });
  assert.deepEqual(reloaded['settings'], ['shutdown_timeout']);
});

/** Every object key in `value`, at any depth. */
function keysOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) keysOf(item, out);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      out.push(key);
      keysOf(inner, out);
    }
  }
  return out;
}

test('admin answers spell their keys in snake_case, as the configuration does', async (t) => {
  const backend = await startBackend(t, (_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('cached'));
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }], health_check: { type: 'tcp', interval: '50ms', timeout: '50ms' } } },
    routes: [{ match: {}, upstream: 'app', cache: { enabled: true } }],
    admin: { address: '127.0.0.1:0' },
  });
  await request(`${proxy.url}/a`);
  await request(`${proxy.url}/a`);
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  await request(`${admin}/bans/192.0.2.1?duration=1m`, { method: 'POST' });
  await waitFor(async () => JSON.parse((await request(`${admin}/status`)).body).upstreams.app.servers[0].last_check !== null, 3000, 'a health check');
  const answers = {
    status: JSON.parse((await request(`${admin}/status`)).body),
    bans: JSON.parse((await request(`${admin}/bans`)).body),
    cache: JSON.parse((await request(`${admin}/cache`)).body),
    drain: JSON.parse((await request(`${admin}/upstreams/app/servers/0/drain`, { method: 'POST' })).body),
  };
  assert.equal(answers.cache.stores.default.hits, 1);
  assert.equal(typeof answers.cache.stores.default.max_size, 'number');
  assert.equal(answers.cache.stores.default.stale_hits, 0);
  for (const [endpoint, body] of Object.entries(answers)) {
    const camel = keysOf(body).filter((key) => /[a-z][A-Z]/.test(key));
    assert.deepEqual(camel, [], `${endpoint}: ${camel.join(', ')}`);
  }
});
