/**
 * `limits:` at the listener: oversized heads and bodies are refused before (or as soon as) they
 * would reach a backend, slow clients are timed out, and keep-alive connections are bounded.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { echo, startBackend } from '../helpers/backend.ts';
import { Connection } from '../helpers/clients.ts';
import { rawRequest, waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy, type RunningProxy } from '../helpers/proxy.ts';

/** A backend that counts the body bytes it receives and answers only once the body is complete. */
async function countingBackend(t: TestContext) {
  const seen = { requests: 0, bytes: 0, closed: 0 };
  const backend = await startBackend(t, (req: IncomingMessage, res) => {
    seen.requests++;
    req.on('error', () => {});
    req.on('data', (c: Buffer) => (seen.bytes += c.length));
    req.on('end', () => res.end('ok'));
    req.socket.once('close', () => seen.closed++);
  });
  return { backend, seen };
}

async function limitedProxy(t: TestContext, url: string, limits: Record<string, number | string>): Promise<RunningProxy> {
  return startProxy(t, { ...simpleProxyConfig([url]), limits });
}

test('a request head larger than max_header_size → 431, and the backend sees nothing', async (t) => {
  const { backend, seen } = await countingBackend(t);
  const proxy = await limitedProxy(t, backend.url, { max_header_size: '1kb' });
  const ok = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ${'a'.repeat(600)}\r\nConnection: close\r\n\r\n`);
  assert.match(ok, /^HTTP\/1\.1 200 /, 'a head under the limit passes');
  const raw = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ${'a'.repeat(2000)}\r\n\r\n`);
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assert.equal(seen.requests, 1, 'only the request under the limit reached the backend');
});

test('a declared body larger than max_body_size → 413 before the backend sees anything', async (t) => {
  const { backend, seen } = await countingBackend(t);
  const proxy = await limitedProxy(t, backend.url, { max_body_size: '1kb' });
  const ok = await rawRequest(proxy.port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n${'a'.repeat(1024)}`);
  assert.match(ok, /^HTTP\/1\.1 200 /, 'a body of exactly the limit passes');
  assert.equal(seen.bytes, 1024);
  // Only the head is sent: the answer must not wait for the body.
  const raw = await rawRequest(proxy.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 413 /);
  assert.match(raw, /\r\nconnection: close\r\n/i, 'the unread body leaves the connection unusable');
  assert.ok(raw.length - raw.indexOf('\r\n\r\n') - 4 <= 64, 'a small error body');
  assert.equal(seen.requests, 1, 'the oversized request never reached the backend');
});

test('a chunked body past max_body_size → 413, and the backend never receives more than the limit', async (t) => {
  const { backend, seen } = await countingBackend(t);
  const proxy = await limitedProxy(t, backend.url, { max_body_size: '4kb' });
  const conn = await Connection.open(t, proxy.port);
  conn.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  // 1 KiB chunks, one at a time once the previous one has reached the backend, up to twice the limit.
  for (let i = 1; i <= 8 && !conn.socket.destroyed; i++) {
    conn.socket.write(`400\r\n${'b'.repeat(1024)}\r\n`);
    if (i <= 4) await waitFor(() => seen.bytes === i * 1024, 2000, `chunk ${i} at the backend`);
  }
  const res = await conn.answer();
  assert.equal(res.status, 413);
  assert.match(res.head, /\r\nconnection: close/);
  await conn.closed;
  await waitFor(() => seen.closed === seen.requests, 2000, 'the upstream request to be aborted');
  assert.equal(seen.requests, 1);
  assert.equal(seen.bytes, 4096, 'the backend got the body up to the limit and nothing past it');
});

test('a client that sends half a request head and stalls is answered 408 or closed within about header_timeout', async (t) => {
  const { backend, seen } = await countingBackend(t);
  const proxy = await limitedProxy(t, backend.url, { header_timeout: 300 });
  const conn = await Connection.open(t, proxy.port);
  const started = performance.now();
  conn.socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Half');
  const closedAt = await conn.closed;
  const ms = closedAt - started;
  const received = await conn.answer().then(
    (r) => r.status,
    () => 0,
  );
  assert.ok(received === 408 || received === 0, `408 or a plain close, got ${received}`);
  // node:http checks the header timeout on connectionsCheckingInterval (here 100 ms).
  assert.ok(ms >= 280 && ms < 300 + 700, `closed in about header_timeout (${ms.toFixed(0)} ms)`);
  assert.equal(seen.requests, 0);
});

test('keepalive_timeout closes an idle keep-alive connection', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await limitedProxy(t, backend.url, { keepalive_timeout: 300 });
  const conn = await Connection.open(t, proxy.port);
  conn.socket.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
  const first = await conn.answer();
  assert.equal(first.status, 200);
  assert.doesNotMatch(first.head, /\r\nconnection: close/);
  // Still usable right after the answer.
  conn.socket.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await conn.answer()).status, 200);
  const idleFrom = performance.now();
  const ms = (await conn.closed) - idleFrom;
  // node:http adds server.keepAliveTimeoutBuffer (1 s by default) to the socket timeout, so that a
  // client acting on the advertised Keep-Alive: timeout never races the close.
  assert.ok(ms >= 280, `not closed before keepalive_timeout (${ms.toFixed(0)} ms)`);
  assert.ok(ms < 300 + 1000 + 700, `closed in about keepalive_timeout (${ms.toFixed(0)} ms)`);
});

test('max_requests_per_connection: the Nth answer says Connection: close and the connection closes', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await limitedProxy(t, backend.url, { max_requests_per_connection: 3, keepalive_timeout: '5s' });
  const conn = await Connection.open(t, proxy.port);
  for (let i = 1; i <= 3; i++) {
    conn.socket.write(`GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await conn.answer();
    assert.equal(res.status, 200, `request ${i}`);
    assert.equal(JSON.parse(res.body).url, `/${i}`);
    if (i < 3) assert.doesNotMatch(res.head, /\r\nconnection: close/, `request ${i} keeps the connection`);
    else assert.match(res.head, /\r\nconnection: close/, 'the last allowed request closes');
  }
  const answeredAt = performance.now();
  const ms = (await conn.closed) - answeredAt;
  assert.ok(ms < 500, `closed right after the last answer, not by the keep-alive timeout (${ms.toFixed(0)} ms)`);
  assert.equal(backend.requests.length, 3);
});
