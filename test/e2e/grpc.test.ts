/**
 * gRPC through Gatehouse: a grpc-js client → Gatehouse (h2c on a plain listener, or h2 by ALPN on
 * TLS) → a grpc-js server (protocol h2c, or h2 over TLS). Unary, server streaming and bidi
 * streaming calls, statuses and trailers intact, deadlines honoured.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { createServer as createH2Server, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { parseConfigText } from '../../src/config/load.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { errorOf } from '../helpers/config.ts';
import { h2Request, h2Session } from '../helpers/h2.ts';
import { request } from '../helpers/http.ts';
import { echoClient, NOT_SERVING, SERVING, startEchoServer, unary, type Message } from '../helpers/grpc.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

type Client = ReturnType<typeof echoClient>;

/** A proxy with an h2c listener in front of a plain grpc-js server. */
async function h2cSetUp(t: TestContext) {
  const backend = await startEchoServer(t);
  const proxy = await startProxy(t, {
    listen: [{ address: '127.0.0.1:0', h2c: true }],
    upstreams: { grpc: { servers: [{ url: `http://127.0.0.1:${backend.port}` }], protocol: 'h2c' } },
    routes: [{ match: { path_prefix: '/gatehouse.test.Echo/' }, upstream: 'grpc' }],
  });
  return { backend, client: echoClient(t, `127.0.0.1:${proxy.port}`) };
}

function collect(call: grpc.ClientReadableStream<Message>): Promise<{ messages: Message[]; status: grpc.StatusObject }> {
  const messages: Message[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (m: Message) => messages.push(m));
    call.on('error', reject);
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ messages, status });
    });
  });
}

test('gRPC over h2c: a unary call, with metadata to the server and trailers back', async (t) => {
  const { backend, client } = await h2cSetUp(t);
  const metadata = new grpc.Metadata();
  metadata.set('x-tenant', 'acme');
  const { response, trailers } = await unary(client, 'unary', { text: 'hello' }, {}, metadata);
  assert.deepEqual(response, { echo: 'hello', from: 'server' });
  assert.deepEqual(trailers.get('x-trailer'), ['from-server']);
  assert.equal(backend.log.metadata.length, 1);
  assert.equal(backend.log.metadata[0]?.['x-tenant'], 'acme');
});

test('gRPC over h2c: an error status (a trailers-only answer) reaches the client intact', async (t) => {
  const { client } = await h2cSetUp(t);
  await assert.rejects(unary(client, 'unary', { fail: grpc.status.NOT_FOUND, details: 'no such thing' }), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.NOT_FOUND);
    assert.equal(error.details, 'no such thing');
    return true;
  });
});

test('gRPC over h2c: server streaming delivers every message, then OK', async (t) => {
  const { client } = await h2cSetUp(t);
  const call = (client['serverStream'] as Function).call(client, { count: 50 }) as grpc.ClientReadableStream<Message>;
  const { messages, status } = await collect(call);
  assert.equal(messages.length, 50);
  assert.deepEqual(messages[49], { n: 49 });
  assert.equal(status.code, grpc.status.OK);
});

test('gRPC over h2c: bidi streaming answers each message before the client has finished sending', async (t) => {
  const { client } = await h2cSetUp(t);
  const call = (client['bidi'] as Function).call(client) as grpc.ClientDuplexStream<Message, Message>;
  const received: Message[] = [];
  call.on('data', (m: Message) => received.push(m));
  const done = new Promise<grpc.StatusObject>((resolve, reject) => {
    call.on('status', resolve);
    call.on('error', reject);
  });
  // Ping-pong: each answer must arrive while the request stream is still open.
  for (const text of ['one', 'two', 'three']) {
    call.write({ text });
    await waitFor(() => received.some((m) => m['echo'] === text), 5000, `the answer to ${text}`);
  }
  call.end();
  assert.equal((await done).code, grpc.status.OK);
  assert.deepEqual(received, [{ echo: 'one' }, { echo: 'two' }, { echo: 'three' }]);
});

test('gRPC over h2c: a deadline is honoured; the server sees the call cancelled', async (t) => {
  const { backend, client } = await h2cSetUp(t);
  const started = performance.now();
  await assert.rejects(unary(client, 'slow', { ms: 5000 }, { deadline: Date.now() + 300 }), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
    return true;
  });
  assert.ok(performance.now() - started < 2000, 'the client did not wait for the server');
  // The client's cancel (RST_STREAM) went through to the server, or grpc-timeout did.
  await waitFor(() => backend.log.cancelled === 1, 3000, 'the server to see the call cancelled');
});

test('gRPC over TLS: h2 by ALPN from the client, h2 over TLS to a server with a private CA, health checks over h2 too', async (t) => {
  const ca = await createCa('gRPC CA');
  const dir = await tempDir(t);
  const front = await writePair(dir, 'front', await ca.issue({ names: ['grpc.test'] }));
  const back = await ca.issue({ names: ['127.0.0.1'] });
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  const backend = await startEchoServer(t, grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(back.cert), private_key: Buffer.from(back.key) }]));
  const proxy = await startProxy(t, {
    listen: [{ address: '127.0.0.1:0', tls: { certificates: [front] } }],
    upstreams: {
      grpc: {
        servers: [{ url: `https://127.0.0.1:${backend.port}` }],
        protocol: 'h2',
        tls: { ca: caFile },
        // A gRPC server answers a plain HTTP/2 request with 415: up, and speaking HTTP/2 over TLS.
        health_check: { method: 'POST', path: '/', expect_status: [415], interval: '50ms', rise: 1, fall: 1 },
      },
    },
    routes: [{ match: {}, upstream: 'grpc' }],
  });
  type Status = { upstreams: Record<string, { servers: { state: string; last_check: { ok: boolean; detail: string } | null }[] }> };
  const checked = () => (proxy.gatehouse.status() as Status).upstreams['grpc']?.servers[0]?.last_check;
  // A check that timed out on a loaded machine (the timeout is the 50ms interval) is not the one looked for.
  await waitFor(() => checked() !== null && checked() !== undefined && checked()?.detail !== 'timeout', 5000, 'a health check');
  assert.deepEqual({ ok: checked()?.ok, detail: checked()?.detail }, { ok: true, detail: '415' });
  const client: Client = echoClient(t, `127.0.0.1:${proxy.port}`, grpc.credentials.createSsl(Buffer.from(ca.cert)), {
    'grpc.ssl_target_name_override': 'grpc.test',
    'grpc.default_authority': 'grpc.test',
  });
  const { response, trailers } = await unary(client, 'unary', { text: 'secure' });
  assert.deepEqual(response, { echo: 'secure', from: 'server' });
  assert.deepEqual(trailers.get('x-trailer'), ['from-server']);
  const call = (client['serverStream'] as Function).call(client, { count: 5 }) as grpc.ClientReadableStream<Message>;
  assert.equal((await collect(call)).messages.length, 5);
});

test('protocol h2c to any HTTP/2 server: the client\'s TE: trailers is passed on (and only that TE), trailers come back to an HTTP/1.1 client, bodies go over', async (t) => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createH2Server((req, res) => {
    seen.push(req.headers);
    let received = 0;
    req.on('data', (chunk: Buffer) => (received += chunk.length));
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end(req.method === 'POST' ? `received ${received}` : 'streamed body');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const proxy = await startProxy(t, {
    upstreams: { h2: { servers: [{ url: `http://127.0.0.1:${port}` }], protocol: 'h2c' } },
    routes: [{ match: {}, upstream: 'h2' }],
  });
  const res = await request(`${proxy.url}/x`, { headers: { te: 'trailers', host: 'public.example' } });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'streamed body');
  assert.equal(res.trailers['x-checksum'], 'abc123');
  assert.equal(seen[0]?.['te'], 'trailers');
  assert.equal(seen[0]?.[':authority'], 'public.example');
  await request(`${proxy.url}/y`, { headers: { te: 'gzip' } });
  assert.equal(seen[1]?.['te'], undefined, 'another TE is not passed on');
  await request(`${proxy.url}/z`, { headers: { te: 'trailersfoo, deflate' } });
  assert.equal(seen[2]?.['te'], undefined, 'a coding that only starts with "trailers" is not trailers');
  await request(`${proxy.url}/w`, { headers: { te: 'gzip;q=0.5, Trailers' } });
  assert.equal(seen[3]?.['te'], 'trailers', 'trailers listed among others, in any case');
  const posted = await request(`${proxy.url}/upload`, { method: 'POST', body: Buffer.alloc(300_000, 'x') });
  assert.equal(posted.body, 'received 300000', 'an HTTP/1.1 request body streams to an HTTP/2 server');
});

test('protocol: h2 needs https:// servers and h2c http:// ones, said at the server URL', () => {
  const text = (protocol: string, url: string): string =>
    ['listen: [{ address: "127.0.0.1:0" }]', 'upstreams:', '  app:', `    protocol: ${protocol}`, '    servers:', `      - url: ${url}`].join('\n');
  assert.equal(errorOf(text('h2', 'http://127.0.0.1:1')), 'gatehouse.yaml:6:14 upstreams.app.servers[0].url: protocol: h2 needs https:// servers (HTTP/2 without TLS is h2c)');
  assert.equal(errorOf(text('h2c', 'https://127.0.0.1:1')), 'gatehouse.yaml:6:14 upstreams.app.servers[0].url: protocol: h2c needs http:// servers (HTTP/2 over TLS is h2)');
  assert.equal(errorOf(text('http3', 'http://127.0.0.1:1')), 'gatehouse.yaml:4:15 upstreams.app.protocol: must be one of http1, h2, h2c (did you mean "http1"?)');
});

test('health_check type grpc: the standard gRPC health check takes a NOT_SERVING server out and brings it back', async (t) => {
  const backend = await startEchoServer(t);
  backend.log.health.set('gatehouse.test.Echo', SERVING);
  const health_check = { type: 'grpc' as const, interval: '50ms', rise: 1, fall: 1 };
  const url = `http://127.0.0.1:${backend.port}`;
  const proxy = await startProxy(t, {
    listen: [{ address: '127.0.0.1:0', h2c: true }],
    upstreams: {
      grpc: { servers: [{ url }], protocol: 'h2c', health_check, retries: { attempts: 1 } },
      named: { servers: [{ url }], protocol: 'h2c', health_check: { ...health_check, service: 'gatehouse.test.Echo' } },
      unknown: { servers: [{ url }], protocol: 'h2c', health_check: { ...health_check, service: 'no.such.Service' } },
    },
    routes: [{ match: {}, upstream: 'grpc' }],
  });
  type Status = { upstreams: Record<string, { servers: { state: string; last_check: { ok: boolean; detail: string } | null }[] }> };
  const server = (name: string) => (proxy.gatehouse.status() as Status).upstreams[name]?.servers[0];
  await waitFor(() => server('grpc')?.last_check?.detail === 'SERVING' && server('named')?.last_check?.detail === 'SERVING', 5000, 'SERVING');
  // Timeouts on a loaded machine take servers down too: wait for the verdict looked for.
  await waitFor(() => server('unknown')?.state === 'down' && server('unknown')?.last_check?.detail !== 'timeout', 5000, 'the unknown service to be down');
  assert.equal(server('unknown')?.last_check?.detail, 'grpc-status 5 (unknown service no.such.Service)');
  const client = echoClient(t, `127.0.0.1:${proxy.port}`);
  assert.deepEqual((await unary(client, 'unary', { text: 'up' })).response, { echo: 'up', from: 'server' });

  backend.log.health.set('', NOT_SERVING);
  await waitFor(() => server('grpc')?.state === 'down' && server('grpc')?.last_check?.detail !== 'timeout', 5000, 'the server to go down');
  assert.equal(server('grpc')?.last_check?.detail, 'NOT_SERVING');
  assert.equal(server('named')?.state, 'up', 'a service check asks about its service only');
  // No server: Gatehouse answers 503, which gRPC clients see as UNAVAILABLE.
  await assert.rejects(unary(client, 'unary', { text: 'down' }), (error: grpc.ServiceError) => error.code === grpc.status.UNAVAILABLE);

  backend.log.health.set('', SERVING);
  await waitFor(() => server('grpc')?.state === 'up', 5000, 'the server to come back');
  assert.deepEqual((await unary(client, 'unary', { text: 'back' })).response, { echo: 'back', from: 'server' });
});

test('health_check type grpc needs protocol h2 or h2c, and service only goes with it', () => {
  const text = (lines: string[]): string =>
    ['listen: [{ address: "127.0.0.1:0" }]', 'upstreams:', '  app:', '    servers: [{ url: "http://127.0.0.1:1" }]', ...lines].join('\n');
  assert.equal(errorOf(text(['    health_check: { type: grpc }'])), 'gatehouse.yaml:5:27 upstreams.app.health_check.type: grpc checks need protocol: h2 or h2c (gRPC is HTTP/2)');
  assert.equal(parseConfigText(text(['    protocol: h2c', '    health_check: { type: grpc, service: x.Y }']), 'gatehouse.yaml').upstreams['app']?.health_check?.service, 'x.Y');
  assert.equal(errorOf(text(['    health_check: { service: x.Y }'])), 'gatehouse.yaml:5:30 upstreams.app.health_check.service: only applies to type: grpc');
  assert.equal(errorOf(text(['    protocol: h2c', '    health_check: { type: grpc, expect_body: ok }'])), 'gatehouse.yaml:6:46 upstreams.app.health_check.expect_body: only applies to type: http');
});

test('a gRPC head (grpc-status, stream left open) whose connection then drops reaches the client as a reset stream, not as a 502 carrying that grpc-status', async (t) => {
  const server = createH2Server();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' });
    setTimeout(() => stream.session?.socket.destroy(), 20);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const proxy = await startProxy(t, {
    listen: [{ address: '127.0.0.1:0', h2c: true }],
    upstreams: { grpc: { servers: [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }], protocol: 'h2c', retries: { attempts: 1 } } },
    routes: [{ match: {}, upstream: 'grpc' }],
  });
  const session = await h2Session(t, `http://127.0.0.1:${proxy.port}`);
  const headers = { ':method': 'POST', ':path': '/x.Y/Z', 'content-type': 'application/grpc', te: 'trailers' };
  const answer = await h2Request(session, headers, Buffer.alloc(5)).then(
    (res) => `${res.status} grpc-status ${String(res.headers['grpc-status'])}`,
    (error: unknown) => String((error as { code?: unknown }).code),
  );
  assert.equal(answer, 'ERR_HTTP2_STREAM_ERROR');
});
