/**
 * Slow and oversized clients: a request body slower than limits.body_min_rate is cut (without
 * blaming a client for a backend that reads slowly), and heads with too many lines or too long
 * a target are refused. (Header and keep-alive timeouts and requests per connection: limits.test.ts.)
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { echo, startBackend } from '../helpers/backend.ts';
import { Connection } from '../helpers/clients.ts';
import { rawRequest, waitFor } from '../helpers/http.ts';
import { protectionCounters, simpleProxyConfig, startProxy } from '../helpers/proxy.ts';


/** A backend that reads the body (after `holdMs`) and answers with its length. */
async function bodyBackend(t: TestContext, holdMs = 0) {
  const seen = { requests: 0, aborted: 0 };
  const backend = await startBackend(t, (req: IncomingMessage, res) => {
    seen.requests++;
    req.on('error', () => {});
    req.on('aborted', () => seen.aborted++);
    req.pause();
    setTimeout(() => {
      let length = 0;
      req.on('data', (c: Buffer) => (length += c.length));
      req.on('end', () => res.end(String(length)));
      req.resume();
    }, holdMs);
  });
  return { backend, seen };
}

test('slow POST: a body trickling below body_min_rate is cut with 408 once the grace period is over', async (t) => {
  const { backend, seen } = await bodyBackend(t);
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), limits: { body_min_rate: 1000, body_min_rate_grace: 300 } });
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  conn.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
  const started = performance.now();
  const trickle = setInterval(() => conn.write('x'.repeat(10)), 100);
  t.after(() => clearInterval(trickle));
  const closedAt = await conn.closed;
  clearInterval(trickle);
  const ms = closedAt - started;
  assert.match(conn.pending, /^HTTP\/1\.1 408 /);
  assert.ok(ms >= 300 && ms < 1500, `cut after ${ms.toFixed(0)} ms`);
  await waitFor(() => seen.aborted === 1, 2000, 'the backend request to be aborted');
  assert.equal(protectionCounters(proxy).slow_bodies, 1);
});

test('a body at a good rate passes, and so does a fast one the backend is slow to read', async (t) => {
  const { backend } = await bodyBackend(t, 900);
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), limits: { body_min_rate: 1000, body_min_rate_grace: 300 } });
  const conn = await Connection.open(t, proxy.port);
  const body = 'y'.repeat(4 * 1024 * 1024);
  conn.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
  conn.write(body);
  const answer = await conn.answer();
  assert.equal(answer.status, 200, 'the backend held the body back for 900 ms: not the client\'s fault');
  assert.equal(answer.body, String(body.length));
  // 2,000 bytes/s against a minimum of 1,000, in small chunks.
  conn.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1600\r\n\r\n');
  for (let i = 0; i < 8; i++) {
    conn.write('z'.repeat(200));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal((await conn.answer()).status, 200);
  assert.equal(protectionCounters(proxy).slow_bodies, 0);
});

test('more header lines than max_header_count → 431; exactly the limit passes', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), limits: { max_header_count: 20 } });
  const lines = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  // Host and Connection are two of the lines.
  assert.match(await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines(18)}\r\n`), /^HTTP\/1\.1 200 /);
  const refused = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines(19)}\r\n`);
  assert.match(refused, /^HTTP\/1\.1 431 /);
  assert.match(refused, /\r\nconnection: close\r\n/i);
  // A framing header hidden past the limit cannot slip by either.
  const hidden = await rawRequest(proxy.port, `POST / HTTP/1.1\r\nHost: x\r\n${lines(40)}Transfer-Encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`);
  assert.match(hidden, /^HTTP\/1\.1 431 /);
  assert.equal(backend.requests.length, 1);
});

test('a request target longer than max_url_length → 414', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), limits: { max_url_length: 100 } });
  assert.match(await rawRequest(proxy.port, `GET /${'a'.repeat(99)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
  assert.match(await rawRequest(proxy.port, `GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 414 /);
  assert.equal(backend.requests.length, 1);
});
