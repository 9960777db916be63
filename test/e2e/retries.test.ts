/** Retries, the retry budget, the deadline and circuit breaking, end to end. */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { closedPort, startRawBackend } from '../helpers/backend.ts';
import { rawRequest, waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';
import { client, runMany, startRestartable, tally, upstreamView, type Handler } from '../helpers/upstreams.ts';

/** Echoes the method and the body it read. */
function echoBody(name: string): Handler {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => res.end(`${name} ${req.method} ${body}`));
  };
}

function answer(status: number, body: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    });
  };
}

test('a connect failure is retried on another server for any method, with the request body intact', async (t) => {
  const refused = `http://127.0.0.1:${await closedPort()}`;
  const good = await startRestartable(t, 'good', echoBody('good'));
  // balance: first sends every first try to the refused server.
  const proxy = await startProxy(t, simpleProxyConfig([refused, good.url], { balance: 'first', outlier_detection: { enabled: false } }));
  const post = client(t, proxy.url, 1);
  const res = await post('/', { method: 'POST', body: 'the body', headers: { 'content-type': 'text/plain' } });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'good POST the body');
  // A chunked body (no Content-Length) is replayed too: it was never read.
  const chunked = await rawRequest(proxy.port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.match(chunked, /^HTTP\/1\.1 200 /);
  assert.ok(chunked.endsWith('good POST hello'), chunked);
  assert.equal(upstreamView(proxy.gatehouse).retries.total, 2, 'each request tried the refused server first, then was retried');
});

test('a reset after the request was sent: retried for GET, never for POST (the server may have acted on it)', async (t) => {
  const reset = await startRawBackend(t, (socket) => socket.once('data', () => socket.resetAndDestroy()));
  const good = await startRestartable(t, 'good', echoBody('good'));
  const proxy = await startProxy(t, simpleProxyConfig([reset.url, good.url], { balance: 'first', outlier_detection: { enabled: false } }));
  const send = client(t, proxy.url, 1);
  const get = await send('/');
  assert.equal(get.status, 200);
  assert.equal(get.body, 'good GET ');
  const resetBefore = reset.sockets.length;
  const before = good.requests.length;
  const post = await send('/', { method: 'POST', body: 'pay once' });
  assert.equal(post.status, 502);
  assert.equal(good.requests.length, before, 'the POST was not sent to another server');
  assert.ok(reset.sockets.length > resetBefore, 'it was sent, to the server that reset it');
  assert.equal(upstreamView(proxy.gatehouse).retries.total, 1, 'only the GET was retried');
});

test('retryable statuses (retry_on: [503]) are retried for idempotent methods; the last answer passes otherwise', async (t) => {
  const busy = await startRestartable(t, 'busy', answer(503, 'busy'));
  const good = await startRestartable(t, 'good', echoBody('good'));
  const proxy = await startProxy(t, simpleProxyConfig([busy.url, good.url], { balance: 'first', retries: { retry_on: ['connect_failure', 503] } }));
  const send = client(t, proxy.url, 1);
  const get = await send('/');
  assert.equal(get.status, 200);
  assert.equal(get.body, 'good GET ');
  const post = await send('/', { method: 'POST', body: 'x' });
  assert.equal(post.status, 503, 'POST is not idempotent: the 503 is passed on');
  assert.equal(post.body, 'busy');
  // PUT is idempotent, but its body was sent and read: it cannot be sent again.
  const put = await send('/', { method: 'PUT', body: 'x' });
  assert.equal(put.status, 503);
  assert.equal(put.body, 'busy');
});

test('when every try fails with a retryable status, the last answer reaches the client; attempts caps the tries', async (t) => {
  const servers = [
    await startRestartable(t, 'a', answer(502, 'a')),
    await startRestartable(t, 'b', answer(502, 'b')),
    await startRestartable(t, 'c', answer(502, 'c')),
  ];
  const proxy = await startProxy(t, simpleProxyConfig(servers.map((s) => s.url), { retries: { attempts: 2, retry_on: [502] } }));
  const res = await client(t, proxy.url, 1)('/');
  assert.equal(res.status, 502);
  assert.equal(servers.reduce((n, s) => n + s.requests.length, 0), 2, 'two tries, on two different servers');
  assert.ok(servers.every((s) => s.requests.length <= 1));
});

test('timeouts are retried only when asked, and the overall deadline bounds all tries', async (t) => {
  const silent = () => startRawBackend(t, (socket) => socket.resume());
  const s1 = await silent();
  const s2 = await silent();
  const s3 = await silent();
  const proxy = await startProxy(t, {
    upstreams: {
      plain: { servers: [{ url: s1.url }, { url: s2.url }], timeouts: { header: 200 }, outlier_detection: { enabled: false } },
      deadline: {
        servers: [{ url: s1.url }, { url: s2.url }, { url: s3.url }],
        timeouts: { header: '5s' },
        retries: { retry_on: ['timeout'], deadline: '300ms' },
        outlier_detection: { enabled: false },
      },
    },
    routes: [
      { match: { path: '/plain' }, upstream: 'plain' },
      { match: { path: '/deadline' }, upstream: 'deadline' },
    ],
  });
  const get = client(t, proxy.url, 1);
  const before = s1.sockets.length + s2.sockets.length;
  const plain = await get('/plain');
  assert.equal(plain.status, 504);
  assert.equal(s1.sockets.length + s2.sockets.length, before + 1, 'timeout is not in the default retry_on');
  const tried = s1.sockets.length + s2.sockets.length + s3.sockets.length;
  const deadline = await get('/deadline');
  assert.equal(deadline.status, 504);
  assert.equal(s1.sockets.length + s2.sockets.length + s3.sockets.length, tried + 1, 'one try: the deadline left no time for another');
  // The deadline cut the first try (not the 5 s header timeout), and no try followed it.
  assert.ok(deadline.ms < 300 + 1200, `cut by the deadline: ${deadline.ms.toFixed(0)} ms`);
});

test('the retry budget holds under load: retries stay within 20% of requests', async (t) => {
  const REQUESTS = 500;
  const a = await startRestartable(t, 'a', answer(503, 'a'));
  const b = await startRestartable(t, 'b', answer(503, 'b'));
  const proxy = await startProxy(t, simpleProxyConfig([a.url, b.url], { retries: { attempts: 3, retry_on: [503], budget: { percent: 20, min_per_second: 0 } } }));
  const get = client(t, proxy.url, 8);
  const replies = await runMany(REQUESTS, 8, () => get('/'));
  assert.ok(replies.every((r) => r.status === 503));
  const tries = a.requests.length + b.requests.length;
  const retries = tries - REQUESTS;
  assert.ok(retries <= REQUESTS * 0.2, `${retries} retries for ${REQUESTS} requests`);
  assert.ok(retries >= REQUESTS * 0.15, `the budget is used: ${retries} retries`);
  assert.equal(upstreamView(proxy.gatehouse).retries.total, retries);
});

test('circuit breaker: past max_in_flight and max_queued, 503 at once; queued requests go on when a slot frees', async (t) => {
  const held: ServerResponse[] = [];
  let concurrent = 0;
  let peak = 0;
  const backend = await startRestartable(t, 'b', (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    concurrent++;
    peak = Math.max(peak, concurrent);
    res.once('finish', () => concurrent--);
    held.push(res);
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url], { circuit_breaker: { max_in_flight: 4, max_queued: 2 } }));
  const get = client(t, proxy.url, 12);
  const pending = Array.from({ length: 10 }, () => get('/'));
  await waitFor(
    () => held.length === 4 && upstreamView(proxy.gatehouse).queued === 2 && upstreamView(proxy.gatehouse).rejected === 4,
    5000,
    'four in flight, two queued, four refused',
  );
  const view = upstreamView(proxy.gatehouse);
  assert.equal(view.in_flight, 4);
  assert.equal(view.rejected, 4);
  // Release the held ones as they come: the queued two get their turn.
  const release = setInterval(() => held.shift()?.end('ok'), 5);
  t.after(() => clearInterval(release));
  const replies = await Promise.all(pending);
  clearInterval(release);
  assert.deepEqual(tally(replies.map((r) => String(r.status))), { 200: 6, 503: 4 });
  assert.ok(replies.filter((r) => r.status === 503).every((r) => r.ms < 1500), 'refused at once, not after the 10 s queue timeout');
  assert.equal(peak, 4, 'never more than max_in_flight at the backend');
});

test('circuit breaker limits hold under load', async (t) => {
  let concurrent = 0;
  let peak = 0;
  const backend = await startRestartable(t, 'b', (req, res) => {
    req.resume();
    concurrent++;
    peak = Math.max(peak, concurrent);
    setTimeout(() => {
      concurrent--;
      res.end('ok');
    }, 5);
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url], { circuit_breaker: { max_in_flight: 5, max_queued: 10 } }));
  const get = client(t, proxy.url, 40);
  const replies = await runMany(600, 40, () => get('/'));
  const counts = tally(replies.map((r) => String(r.status)));
  assert.deepEqual(Object.keys(counts).sort(), ['200', '503']);
  assert.ok((counts['503'] ?? 0) > 0 && (counts['200'] ?? 0) > 0);
  assert.ok(peak <= 5, `at most 5 at once at the backend, saw ${peak}`);
  const view = upstreamView(proxy.gatehouse);
  assert.equal(view.in_flight, 0);
  assert.equal(view.queued, 0);
});

test('a queued request waits at most queue_timeout; one whose client leaves is dropped from the queue', async (t) => {
  const held: ServerResponse[] = [];
  const backend = await startRestartable(t, 'b', (req, res) => {
    req.resume();
    held.push(res);
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url], { circuit_breaker: { max_in_flight: 1, max_queued: 2, queue_timeout: '200ms' } }));
  const get = client(t, proxy.url, 4);
  const first = get('/');
  await waitFor(() => held.length === 1, 2000, 'one in flight');
  // A client that leaves while queued.
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => upstreamView(proxy.gatehouse).queued === 1, 2000, 'one queued');
  socket.destroy();
  await waitFor(() => upstreamView(proxy.gatehouse).queued === 0, 2000, 'dropped from the queue');
  const waited = await get('/');
  assert.equal(waited.status, 503);
  assert.ok(waited.ms >= 180 && waited.ms < 2000, `answered after the queue timeout: ${waited.ms.toFixed(0)} ms`);
  held.shift()?.end('ok');
  assert.equal((await first).status, 200);
  assert.equal(backend.requests.length, 1, 'neither queued request reached the backend');
});
