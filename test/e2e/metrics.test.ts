/**
 * GET /metrics on the admin listener (docs/admin-api.md#metrics): requests by route, upstream,
 * server and status class; latency histograms; bytes; connections; server state, ejections,
 * retries and the circuit breaker; cache, compression and protection counters; TLS; reloads;
 * process metrics. Labels stay bounded: no client address or path ever becomes one.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { connect as netConnect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { configFromObject } from '../../src/config/load.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { request, waitFor } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

const ADMIN = { address: '127.0.0.1:0' };

function adminPort(proxy: { gatehouse: { adminAddress: AddressInfo | undefined } }): number {
  return proxy.gatehouse.adminAddress?.port ?? 0;
}

test('/metrics: requests by route, upstream and status class, latency histograms and bytes, in the Prometheus text format', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/api/missing') res.writeHead(404).end('no');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('hello world');
  });
  const proxy = await startProxy(t, {
    admin: ADMIN,
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'app' },
      { name: 'hello', match: { path: '/hello' }, respond: { status: 200, body: 'hi' } },
    ],
  });
  for (let i = 0; i < 3; i++) assert.equal((await request(`${proxy.url}/api/secret-path-${i}?q=1`)).status, 200);
  assert.equal((await request(`${proxy.url}/api/missing`)).status, 404);
  await request(`${proxy.url}/api/upload`, { method: 'POST', body: 'x'.repeat(100) });
  await request(`${proxy.url}/api/upload`, { method: 'POST', body: Readable.from([Buffer.alloc(30), Buffer.alloc(20)]) });
  assert.equal((await request(`${proxy.url}/hello`)).status, 200);
  assert.equal((await request(`${proxy.url}/nowhere`)).status, 404);

  const { status, contentType, text, samples } = await scrape(adminPort(proxy));
  assert.equal(status, 200);
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  assert.match(text, /# TYPE gatehouse_requests_total counter/);
  assert.match(text, /# TYPE gatehouse_request_duration_seconds histogram/);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'api', upstream: 'app', code: '2xx' }), 5);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'api', upstream: 'app', code: '4xx' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'hello', upstream: '', code: '2xx' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: '', code: '4xx' }), 1, 'requests no route matched count under route=""');
  const server = `127.0.0.1:${backend.port}`;
  assert.equal(valueOf(samples, 'gatehouse_upstream_requests_total', { upstream: 'app', server, code: '2xx' }), 5);
  assert.equal(valueOf(samples, 'gatehouse_upstream_requests_total', { upstream: 'app', server, code: '4xx' }), 1);
  // Histograms: cumulative buckets, +Inf equal to _count, a positive sum.
  assert.equal(valueOf(samples, 'gatehouse_request_duration_seconds_count', { route: 'api' }), 6);
  assert.equal(valueOf(samples, 'gatehouse_request_duration_seconds_bucket', { route: 'api', le: '+Inf' }), 6);
  assert.ok(valueOf(samples, 'gatehouse_request_duration_seconds_sum', { route: 'api' }) > 0);
  assert.ok(valueOf(samples, 'gatehouse_request_duration_seconds_bucket', { route: 'api', le: '0.001' }) <= valueOf(samples, 'gatehouse_request_duration_seconds_bucket', { route: 'api', le: '10' }));
  assert.equal(valueOf(samples, 'gatehouse_upstream_response_seconds_count', { upstream: 'app', server }), 6);
  assert.equal(valueOf(samples, 'gatehouse_upstream_response_seconds_bucket', { upstream: 'app', server, le: '+Inf' }), 6);
  assert.ok(valueOf(samples, 'gatehouse_upstream_response_seconds_sum', { upstream: 'app', server }) > 0);
  // The whole request lasts longer than its wait for the server's head.
  assert.ok(valueOf(samples, 'gatehouse_upstream_response_seconds_sum', { upstream: 'app', server }) <= valueOf(samples, 'gatehouse_request_duration_seconds_sum', { route: 'api' }));
  assert.equal(valueOf(samples, 'gatehouse_request_body_bytes_total', { route: 'api' }), 150, 'declared and chunked bodies');
  assert.equal(valueOf(samples, 'gatehouse_response_body_bytes_total', { route: 'api' }), 5 * 'hello world'.length + 2);
  assert.equal(valueOf(samples, 'gatehouse_upstream_response_body_bytes_total', { server }), 5 * 'hello world'.length + 2);
  assert.equal(valueOf(samples, 'gatehouse_server_state', { server, state: 'up' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_reloads_total', { result: 'ok' }), 0);
  // Process metrics (prom-client's defaults).
  assert.match(text, /^process_cpu_user_seconds_total /m);
  // prom-client counts CPU time from when it started (the first scrape): a scrape after it shows some.
  await waitFor(async () => valueOf((await scrape(adminPort(proxy))).samples, 'process_cpu_user_seconds_total') > 0, 5000, 'CPU time to be counted');
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  // Bounded labels: no path, no client address, only the label names documented.
  assert.doesNotMatch(text, /secret-path/);
  const allowed = new Set(['route', 'upstream', 'server', 'code', 'le', 'state', 'listener', 'protocol', 'result', 'cache', 'event', 'stage', 'name', 'direction']);
  for (const sample of samples.filter((s) => s.name.startsWith('gatehouse_'))) {
    for (const label of Object.keys(sample.labels)) assert.ok(allowed.has(label), `${sample.name} has label ${label}`);
    if (sample.labels['server'] !== undefined) assert.equal(sample.labels['server'], server);
  }
});

test('/metrics: routes sharing a name and an upstream are one series; every series of a scrape is unique', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    admin: ADMIN,
    upstreams: { app: { servers: [{ url: backend.url }] }, other: { servers: [{ url: backend.url }] } },
    routes: [
      { name: 'web', match: { path_prefix: '/a' }, upstream: 'app' },
      { name: 'web', match: { path_prefix: '/b' }, upstream: 'app' },
      { name: 'web', match: { path_prefix: '/c' }, upstream: 'other' },
    ],
  });
  await request(`${proxy.url}/a`);
  await request(`${proxy.url}/b`);
  await request(`${proxy.url}/c`);
  const { samples } = await scrape(adminPort(proxy));
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'web', upstream: 'app', code: '2xx' }), 2);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'web', upstream: 'other', code: '2xx' }), 1);
  const keys = samples.map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`);
  assert.equal(new Set(keys).size, keys.length, 'no duplicate series');
});

test('/metrics: counters survive a reload, and reloads are counted by result', async (t) => {
  const backend = await startBackend(t, echo());
  const config = { ...simpleProxyConfig([backend.url]), admin: ADMIN, access_log: { enabled: false } };
  config.routes = [{ name: 'main', match: {}, upstream: 'app' }];
  const proxy = await startProxy(t, config);
  await request(`${proxy.url}/a`);
  await request(`${proxy.url}/b`);
  await proxy.gatehouse.reload(configFromObject({ ...config, listen: proxy.gatehouse.config.listen }));
  await request(`${proxy.url}/c`);
  await assert.rejects(proxy.gatehouse.reload(configFromObject({ ...config, listen: proxy.gatehouse.config.listen, access_log: { path: '/dev/null/nope/access.log' } })));
  const { samples } = await scrape(adminPort(proxy));
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'main', code: '2xx' }), 3);
  assert.equal(valueOf(samples, 'gatehouse_upstream_requests_total', { code: '2xx' }), 3);
  assert.equal(valueOf(samples, 'gatehouse_reloads_total', { result: 'ok' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_reloads_total', { result: 'failed' }), 1);
  assert.ok(Math.abs(valueOf(samples, 'gatehouse_config_last_reload_success_timestamp_seconds') - Date.now() / 1000) < 60);
});

test('/metrics: retries, failures, ejections, server state and the circuit breaker', async (t) => {
  // A port that refuses connections: bound, then closed.
  const probe = createTcpServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const refusedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const good = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    admin: ADMIN,
    ...simpleProxyConfig([`http://127.0.0.1:${refusedPort}`, good.url], {
      balance: 'first',
      outlier_detection: { consecutive_failures: 1, base_ejection_time: '30s' },
    }),
  });
  assert.equal((await request(`${proxy.url}/`)).status, 200, 'the refused try is retried on the good server');
  const refused = `127.0.0.1:${refusedPort}`;
  const first = await scrape(adminPort(proxy));
  assert.equal(valueOf(first.samples, 'gatehouse_upstream_retries_total', { upstream: 'app' }), 1);
  assert.equal(valueOf(first.samples, 'gatehouse_upstream_failures_total', { server: refused }), 1);
  assert.equal(valueOf(first.samples, 'gatehouse_server_ejections_total', { server: refused }), 1);
  assert.equal(valueOf(first.samples, 'gatehouse_server_state', { server: refused, state: 'ejected' }), 1);
  assert.equal(valueOf(first.samples, 'gatehouse_server_state', { server: refused, state: 'up' }), 0);
  // The circuit breaker: one request in flight (held by a slow answer), the next is refused.
  const slow = await startBackend(t, (_req, res) => setTimeout(() => res.end('late'), 500));
  await proxy.gatehouse.reload(configFromObject({ ...simpleProxyConfig([slow.url], { circuit_breaker: { max_in_flight: 1, max_queued: 0 } }), admin: ADMIN, access_log: { enabled: false }, listen: proxy.gatehouse.config.listen }));
  const held = request(`${proxy.url}/slow`);
  await waitFor(() => slow.requests.length === 1, 5000, 'the slow request to arrive');
  assert.equal((await request(`${proxy.url}/refused`)).status, 503);
  const during = await scrape(adminPort(proxy));
  assert.equal(valueOf(during.samples, 'gatehouse_server_in_flight', { server: `127.0.0.1:${slow.port}` }), 1, 'the held request is in flight');
  await held;
  const second = await scrape(adminPort(proxy));
  assert.equal(valueOf(second.samples, 'gatehouse_upstream_circuit_open_total', { upstream: 'app' }), 1);
  assert.equal(valueOf(second.samples, 'gatehouse_upstream_retries_total', { upstream: 'app' }), 1, 'kept across the reload');
  // With room for one in the queue, the next request waits there while the first is held.
  await proxy.gatehouse.reload(configFromObject({ ...simpleProxyConfig([slow.url], { circuit_breaker: { max_in_flight: 1, max_queued: 1 } }), admin: ADMIN, access_log: { enabled: false }, listen: proxy.gatehouse.config.listen }));
  const inFlight = request(`${proxy.url}/slow`);
  await waitFor(() => slow.requests.length === 2, 5000, 'the second slow request to arrive');
  const queued = request(`${proxy.url}/queued`);
  await waitFor(async () => valueOf((await scrape(adminPort(proxy))).samples, 'gatehouse_upstream_queued', { upstream: 'app' }) === 1, 5000, 'a queued request');
  assert.deepEqual((await Promise.all([inFlight, queued])).map((r) => r.status), [200, 200]);
  assert.equal(valueOf((await scrape(adminPort(proxy))).samples, 'gatehouse_upstream_queued', { upstream: 'app' }), 0, 'the queue emptied');
});

test('/metrics: cache hits, misses and stored bytes; compression in and out; denied and rate-limited requests', async (t) => {
  const body = 'compressible text '.repeat(200);
  const origin = await startBackend(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=3600', 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    // /slow answers late, so that requests arriving meanwhile wait for its fill (collapsed).
    if (req.url === '/slow') setTimeout(() => res.end(body), 300);
    else res.end(body);
  });
  const proxy = await startProxy(t, {
    admin: ADMIN,
    upstreams: { app: { servers: [{ url: origin.url }] } },
    routes: [
      { name: 'limited', match: { path_prefix: '/limited' }, upstream: 'app', rate_limits: [{ rate: '1/m', burst: 0 }] },
      { name: 'denied', match: { path_prefix: '/denied' }, upstream: 'app', access: { deny: ['127.0.0.0/8'] } },
      { name: 'cached', match: {}, upstream: 'app', cache: { enabled: true }, compress: { enabled: true } },
    ],
  });
  await request(`${proxy.url}/page`);
  await request(`${proxy.url}/page`);
  await request(`${proxy.url}/zipped`, { headers: { 'accept-encoding': 'gzip' } });
  await request(`${proxy.url}/limited`);
  assert.equal((await request(`${proxy.url}/limited`)).status, 429);
  assert.equal((await request(`${proxy.url}/denied`)).status, 403);
  const first = request(`${proxy.url}/slow`);
  await waitFor(() => origin.requests.some((r) => r.url === '/slow'), 5000, 'the first /slow to reach the origin');
  await Promise.all([first, request(`${proxy.url}/slow`), request(`${proxy.url}/slow`)]);
  const { samples } = await scrape(adminPort(proxy));
  assert.equal(valueOf(samples, 'gatehouse_cache_requests_total', { result: 'collapsed' }), 2);
  assert.equal(valueOf(samples, 'gatehouse_cache_requests_total', { result: 'miss' }), 5, 'collapsed requests are misses too');
  assert.equal(valueOf(samples, 'gatehouse_cache_requests_total', { result: 'hit' }), 1);
  assert.ok(valueOf(samples, 'gatehouse_cache_stored_bytes') > 0);
  assert.ok(valueOf(samples, 'gatehouse_cache_entries') >= 2, '/page and /slow are held');
  const input = valueOf(samples, 'gatehouse_compression_bytes_total', { stage: 'in' });
  const output = valueOf(samples, 'gatehouse_compression_bytes_total', { stage: 'out' });
  assert.ok(input >= Buffer.byteLength(body), `compressed ${input} bytes`);
  assert.ok(output > 0 && output < input / 5, `into ${output} bytes`);
  assert.equal(valueOf(samples, 'gatehouse_protection_events_total', { event: 'rate_limited' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_protection_events_total', { event: 'denied_requests' }), 1);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'limited', code: '4xx' }), 1);
});

test('/metrics: open connections by listener and protocol, TLS handshakes and certificate expiry', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    admin: ADMIN,
    listen: [{ address: '127.0.0.1:0' }, { address: '127.0.0.1:0', tls: { certificates: [pair] } }],
  });
  const plain = proxy.gatehouse.addresses[0] as AddressInfo;
  const secure = proxy.gatehouse.addresses[1] as AddressInfo;
  const socket = netConnect(plain.port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const tls = tlsConnect({ host: '127.0.0.1', port: secure.port, ca: ca.cert, servername: 'site.test' });
  t.after(() => tls.destroy());
  await once(tls, 'secureConnect');
  const h2 = http2Connect(`https://127.0.0.1:${secure.port}`, { ca: ca.cert, servername: 'site.test' });
  t.after(() => h2.destroy());
  await once(h2, 'remoteSettings');
  // Not a TLS client at all: its handshake fails.
  const bad = netConnect(secure.port, '127.0.0.1');
  bad.on('error', () => {});
  await once(bad, 'connect');
  bad.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(bad, 'close');
  const secureName = `127.0.0.1:${secure.port}`;
  let samples = (await scrape(adminPort(proxy))).samples;
  await waitFor(async () => {
    samples = (await scrape(adminPort(proxy))).samples;
    return valueOf(samples, 'gatehouse_tls_handshakes_total', { listener: secureName, result: 'failed' }) === 1 &&
      valueOf(samples, 'gatehouse_open_connections', { listener: secureName, protocol: 'h2' }) === 1;
  }, 5000, 'the failed handshake to be counted');
  // Listener labels are the bound addresses (the configured ones name port 0 here).
  const listeners = new Set(samples.filter((s) => s.name === 'gatehouse_open_connections').map((s) => s.labels['listener']));
  assert.equal(listeners.size, 2, [...listeners].join());
  assert.equal(valueOf(samples, 'gatehouse_tls_handshakes_total', { result: 'ok' }), 2);
  const open = samples.filter((s) => s.name === 'gatehouse_open_connections' && s.labels['protocol'] === 'http/1.1').reduce((sum, s) => sum + s.value, 0);
  assert.equal(open, 2, 'the plain and the TLS connection are open');
  assert.equal(valueOf(samples, 'gatehouse_open_connections', { listener: secureName, protocol: 'h2' }), 1);
  // Bytes on the wire are added when a connection closes.
  const plainName = `127.0.0.1:${plain.port}`;
  assert.equal(valueOf(samples, 'gatehouse_connection_bytes_total', { listener: plainName, direction: 'in' }), 0);
  await request(`http://127.0.0.1:${plain.port}/x`);
  await waitFor(async () => valueOf((await scrape(adminPort(proxy))).samples, 'gatehouse_connection_bytes_total', { listener: plainName, direction: 'out' }) > 0, 5000, 'bytes of the closed connection');
  const after = (await scrape(adminPort(proxy))).samples;
  assert.ok(valueOf(after, 'gatehouse_connection_bytes_total', { listener: plainName, direction: 'in' }) >= 'GET /x HTTP/1.1\r\n'.length);
  const expiry = valueOf(samples, 'gatehouse_tls_certificate_expiry_timestamp_seconds', { name: 'site.test' });
  assert.ok(expiry > Date.now() / 1000, `expires at ${expiry}`);
});

test('/metrics: admin.metrics: false answers 404 and counts nothing', async (t) => {
  const backend = await startBackend(t, echo());
  const config = { ...simpleProxyConfig([backend.url]), access_log: { enabled: false } };
  const proxy = await startProxy(t, { ...config, admin: { address: '127.0.0.1:0', metrics: false } });
  await request(`${proxy.url}/`);
  const off = await scrape(adminPort(proxy));
  assert.equal(off.status, 404);
  assert.deepEqual(JSON.parse(off.text), { error: 'metrics are off (admin.metrics: false)' });
  // Turned on by a reload: what went by while off was not counted.
  await proxy.gatehouse.reload(configFromObject({ ...config, listen: proxy.gatehouse.config.listen, admin: { address: '127.0.0.1:0' } }));
  await request(`${proxy.url}/`);
  const { samples } = await scrape(adminPort(proxy));
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { code: '2xx' }), 1);
});
