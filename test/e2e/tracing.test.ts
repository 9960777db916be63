/**
 * W3C trace context to servers (a child of the client's traceparent, or a new trace), request
 * ids (a trusted proxy's, or made here) in the response, to servers and in the access log, and
 * the optional OTLP/HTTP span export, checked against a real HTTP collector.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.ts';
import { requestFrom } from '../helpers/clients.ts';
import { request, waitFor } from '../helpers/http.ts';
import { readLines, tempFile } from '../helpers/process.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

/** A backend that answers with the request headers it received, as JSON. */
async function headerEcho(t: TestContext) {
  return startBackend(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
}

async function sentUpstream(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { res, upstream: JSON.parse(res.body) as Record<string, string | undefined> };
}

test('tracing: without a traceparent a trace starts here; the server gets it, the client gets the request id, the log both', async (t) => {
  const backend = await headerEcho(t);
  const log = await tempFile('access.log', '');
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), access_log: { path: log } });
  const { res, upstream } = await sentUpstream(`${proxy.url}/a`, { tracestate: 'vendor=1' });
  const parent = TRACEPARENT.exec(upstream['traceparent'] ?? '');
  assert.ok(parent !== null, `traceparent ${upstream['traceparent']}`);
  const [, traceId, spanId, flags] = parent;
  assert.equal(flags, '01', 'without an export servers may sample');
  assert.equal(upstream['tracestate'], undefined, 'a tracestate without a valid traceparent is dropped');
  assert.equal(res.headers['x-request-id'], traceId, 'the request id of a trace started here is its trace id');
  assert.equal(upstream['x-request-id'], traceId);
  const [line] = await readLines(log, 1);
  const entry = JSON.parse(line as string) as { trace_id: string; request_id: string };
  assert.equal(entry.trace_id, traceId);
  assert.equal(entry.request_id, traceId);
  const second = await sentUpstream(`${proxy.url}/b`);
  assert.notEqual(TRACEPARENT.exec(second.upstream['traceparent'] ?? '')?.[1], traceId, 'each request starts its own trace');
  assert.notEqual(TRACEPARENT.exec(second.upstream['traceparent'] ?? '')?.[2], spanId);
});

test('tracing: a valid traceparent is continued: same trace id, Gatehouse\'s span as the parent, flags and tracestate kept', async (t) => {
  const backend = await headerEcho(t);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
  const { res, upstream } = await sentUpstream(`${proxy.url}/`, { traceparent: incoming, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
  const parent = TRACEPARENT.exec(upstream['traceparent'] ?? '');
  assert.ok(parent !== null);
  assert.equal(parent[1], '0af7651916cd43dd8448eb211c80319c');
  assert.notEqual(parent[2], 'b7ad6b7169203331', 'the server\'s parent is the proxy\'s span');
  assert.equal(parent[3], '00', 'the client\'s sampling decision is followed');
  assert.equal(upstream['tracestate'], 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.match(String(res.headers['x-request-id']), /^[0-9a-f]{32}$/);
  assert.notEqual(res.headers['x-request-id'], '0af7651916cd43dd8448eb211c80319c', 'a client-chosen trace id is not taken as the request id');
  // A future version with more fields is read by its first four (W3C Trace Context §3.2.4).
  const future = await sentUpstream(`${proxy.url}/`, { traceparent: `01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra` });
  assert.equal(TRACEPARENT.exec(future.upstream['traceparent'] ?? '')?.[1], '0af7651916cd43dd8448eb211c80319c');
  assert.equal(TRACEPARENT.exec(future.upstream['traceparent'] ?? '')?.[3], '01');
});

test('tracing: a malformed traceparent starts a new trace', async (t) => {
  const backend = await headerEcho(t);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const bad = [
    '00-00000000000000000000000000000000-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01',
    'garbage',
  ];
  for (const value of bad) {
    const { upstream } = await sentUpstream(`${proxy.url}/`, { traceparent: value, tracestate: 'a=b' });
    const parent = TRACEPARENT.exec(upstream['traceparent'] ?? '');
    assert.ok(parent !== null, value);
    assert.notEqual(parent[1], '0af7651916cd43dd8448eb211c80319c', value);
    assert.equal(upstream['tracestate'], undefined, value);
  }
});

test('request ids: a trusted proxy\'s X-Request-Id is kept, anyone else\'s replaced; the header name is configurable or off', async (t) => {
  const backend = await headerEcho(t);
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), trusted_proxies: ['127.0.0.2/32'] });
  const trusted = await requestFrom('127.0.0.2', `${proxy.url}/`, { headers: { 'x-request-id': 'edge-42' } });
  assert.equal(trusted.headers['x-request-id'], 'edge-42');
  assert.equal((JSON.parse(trusted.body) as Record<string, string>)['x-request-id'], 'edge-42');
  const untrusted = await requestFrom('127.0.0.3', `${proxy.url}/`, { headers: { 'x-request-id': 'forged' } });
  assert.match(String(untrusted.headers['x-request-id']), /^[0-9a-f]{32}$/);
  assert.notEqual((JSON.parse(untrusted.body) as Record<string, string>)['x-request-id'], 'forged');
  const tooLong = await requestFrom('127.0.0.2', `${proxy.url}/`, { headers: { 'x-request-id': 'x'.repeat(200) } });
  assert.match(String(tooLong.headers['x-request-id']), /^[0-9a-f]{32}$/, 'an overlong id is replaced even from a trusted proxy');

  const named = await startProxy(t, { ...simpleProxyConfig([backend.url]), tracing: { request_id_header: 'X-Correlation-Id' } });
  const res = await request(`${named.url}/`);
  assert.match(String(res.headers['x-correlation-id']), /^[0-9a-f]{32}$/);
  assert.equal(res.headers['x-request-id'], undefined);

  const off = await startProxy(t, { ...simpleProxyConfig([backend.url]), tracing: { enabled: false, request_id_header: false } });
  const plain = await sentUpstream(`${off.url}/`, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  assert.equal(plain.res.headers['x-request-id'], undefined);
  assert.equal(plain.upstream['x-request-id'], undefined);
  assert.equal(plain.upstream['traceparent'], '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'tracing off: the client\'s header passes as any other');
});

test('tracing: error answers made by the proxy carry the request id too', async (t) => {
  const proxy = await startProxy(t, { routes: [{ match: { path: '/only' }, respond: { status: 200, body: 'x' } }] });
  const res = await request(`${proxy.url}/elsewhere`);
  assert.equal(res.status, 404);
  assert.match(String(res.headers['x-request-id']), /^[0-9a-f]{32}$/);
});

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

/** An OTLP/HTTP collector: records the spans posted to /v1/traces (JSON). */
async function startCollector(t: TestContext) {
  const spans: OtlpSpan[] = [];
  const services: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of body.resourceSpans) {
          services.push(String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue));
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, services };
}

function attribute(span: OtlpSpan, key: string): string | number | undefined {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
}

test('OTLP: a span per sampled request reaches the collector with the trace id, parent, and attributes', async (t) => {
  const backend = await headerEcho(t);
  const collector = await startCollector(t);
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    routes: [{ name: 'main', match: {}, upstream: 'app' }],
    tracing: { otlp: { endpoint: collector.url, service_name: 'edge-proxy' } },
  });
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const before = BigInt(Date.now() - 1) * 1_000_000n;
  const continued = await sentUpstream(`${proxy.url}/continued?x=1`, { traceparent: incoming });
  const started = await sentUpstream(`${proxy.url}/started`);
  const unsampled = await sentUpstream(`${proxy.url}/unsampled`, { traceparent: '00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' });
  assert.equal(unsampled.res.status, 200);
  await proxy.gatehouse.flushSpans();
  await waitFor(() => collector.spans.length >= 2, 10_000, 'two spans at the collector');
  assert.equal(collector.spans.length, 2, 'the unsampled request exported nothing');
  assert.deepEqual([...new Set(collector.services)], ['edge-proxy']);
  const sentParent = TRACEPARENT.exec(continued.upstream['traceparent'] ?? '') as RegExpExecArray;
  const first = collector.spans.find((s) => s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736') as OtlpSpan;
  assert.ok(first !== undefined, JSON.stringify(collector.spans.map((s) => s.traceId)));
  assert.equal(first.parentSpanId, '00f067aa0ba902b7', 'the client\'s span is the parent');
  assert.equal(first.spanId, sentParent[2], 'the span is the one the server was told is its parent');
  assert.equal(first.name, 'GET main');
  assert.equal(first.kind, 2, 'SPAN_KIND_SERVER');
  assert.equal(attribute(first, 'http.request.method'), 'GET');
  assert.equal(attribute(first, 'url.path'), '/continued');
  assert.equal(attribute(first, 'http.response.status_code'), 200);
  assert.equal(attribute(first, 'gatehouse.route'), 'main');
  assert.equal(attribute(first, 'gatehouse.upstream'), 'app');
  assert.equal(attribute(first, 'gatehouse.server'), `127.0.0.1:${backend.port}`);
  // The span covers the request: it starts after the test began and ends after it starts, before now.
  const startNs = BigInt(first.startTimeUnixNano);
  const endNs = BigInt(first.endTimeUnixNano);
  assert.ok(startNs >= before && endNs > startNs && endNs <= BigInt(Date.now() + 1) * 1_000_000n, `${before} ${startNs} ${endNs}`);
  const startedParent = TRACEPARENT.exec(started.upstream['traceparent'] ?? '') as RegExpExecArray;
  const second = collector.spans.find((s) => s.traceId === startedParent[1]) as OtlpSpan;
  assert.ok(second !== undefined);
  assert.equal(second.parentSpanId ?? '', '', 'a trace started here has a root span');
  assert.equal(second.spanId, startedParent[2]);
  assert.equal(attribute(second, 'gatehouse.request_id'), started.res.headers['x-request-id']);
});

test('request ids: cache hits carry their own request id; the stored response keeps none', async (t) => {
  const origin = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=3600', 'content-type': 'text/plain', 'content-length': '5' });
    res.end('hello');
  });
  const proxy = await startProxy(t, { upstreams: { app: { servers: [{ url: origin.url }] } }, routes: [{ match: {}, upstream: 'app', cache: { enabled: true } }] });
  const miss = await request(`${proxy.url}/page`);
  const hit = await request(`${proxy.url}/page`);
  const conditional = await request(`${proxy.url}/page`, { headers: { 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() } });
  assert.match(String(hit.headers['cache-status']), /hit/);
  const ids = [miss, hit, conditional].map((r) => String(r.headers['x-request-id']));
  for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(new Set(ids).size, 3, 'each answer has its own id');
  assert.equal(hit.rawHeaders.filter((h) => h.toLowerCase() === 'x-request-id').length, 1);
  assert.equal(origin.requests.length, 1);
});

test('OTLP: sample_ratio 0 samples none of the traces started here; a client\'s sampled trace is still exported', async (t) => {
  const backend = await headerEcho(t);
  const collector = await startCollector(t);
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), tracing: { otlp: { endpoint: collector.url, sample_ratio: 0 } } });
  const started = await sentUpstream(`${proxy.url}/started`);
  assert.equal(TRACEPARENT.exec(started.upstream['traceparent'] ?? '')?.[3], '00', 'servers are told it is not sampled');
  await sentUpstream(`${proxy.url}/sampled`, { traceparent: '00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  await proxy.gatehouse.flushSpans();
  await waitFor(() => collector.spans.length >= 1, 10_000, 'the sampled span at the collector');
  await proxy.gatehouse.flushSpans();
  assert.deepEqual(collector.spans.map((s) => s.traceId), ['6bf92f3577b34da6a3ce929d0e0e4736']);
});
