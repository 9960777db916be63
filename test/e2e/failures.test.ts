/**
 * Backend failures: each becomes a small answer that names no backend, or — once the response has
 * started — a cut client connection, so that a truncated body is never taken for a complete one.
 * One proxy serves every case (one upstream per kind of broken backend), and must still work at the end.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { closedPort, echo, startBackend, startRawBackend } from '../helpers/backend.ts';
import { rawRequest, waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

const HEADER_TIMEOUT = 300;
const IDLE_TIMEOUT = 300;
/**
 * undici runs its header and body timeouts on its coarse "fast timers" (a ~500 ms tick), so a
 * timeout fires between its value and about one second later.
 */
const TIMER_SLACK = 1200;

/** How a response ended, as the client saw it. */
interface Outcome {
  /** 0 when no response head arrived at all. */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  /** True only when the body ended as framed (Content-Length reached, or the last chunk seen). */
  readonly complete: boolean;
  /** The client-side error when the connection was cut. */
  readonly error: string | undefined;
  readonly ms: number;
}

/** One GET on its own connection; never rejects, reports how the exchange ended. */
function fetchOutcome(url: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false });
    let response: IncomingMessage | undefined;
    req.on('error', (error: Error) => {
      if (response !== undefined) return;
      const ms = performance.now() - started;
      resolve({ status: 0, headers: {}, rawHeaders: [], body: Buffer.alloc(0), complete: false, error: error.message, ms });
    });
    req.on('response', (res: IncomingMessage) => {
      response = res;
      const chunks: Buffer[] = [];
      let error: string | undefined;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e: Error) => (error = e.message));
      res.on('close', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          complete: res.complete,
          error,
          ms: performance.now() - started,
        });
      });
    });
    req.end();
  });
}

/** The error answer is small and says nothing about the backend. */
function assertOpaque(res: Outcome, backendPort: number): void {
  const body = res.body.toString('latin1');
  assert.ok(res.body.length <= 64, `small error body, got ${res.body.length} bytes`);
  assert.ok(!body.includes('127.0.0.1'), `body names the backend address: ${body}`);
  assert.ok(!body.includes(String(backendPort)), `body names the backend port: ${body}`);
  assert.ok(!/ECONN|UND_ERR|HPE_|socket|undici/i.test(body), `body leaks transport details: ${body}`);
  const head = res.rawHeaders.join('\n');
  assert.ok(!head.includes('127.0.0.1') && !head.includes(`:${backendPort}`), `headers name the backend: ${head}`);
}

test('backend failures never leak backend details, and the proxy survives them', async (t) => {
  const refusedPort = await closedPort();
  // Resets the connection as soon as the request arrives.
  const reset = await startRawBackend(t, (socket) => socket.once('data', () => socket.resetAndDestroy()));
  // Not HTTP at all.
  const garbage = await startRawBackend(t, (socket) =>
    socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6 \x00\x01\x02 this is not http\r\n\r\n')),
  );
  // Reads the request, never answers.
  const silent = await startRawBackend(t, (socket) => socket.resume());
  // Sends the head and the start of the body, then goes quiet.
  const stalls = await startRawBackend(t, (socket) =>
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')),
  );
  // Promises 1000 bytes, sends 100, dies.
  const diesMidBody = await startRawBackend(t, (socket) =>
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(100)}`, () =>
        socket.destroy(),
      );
    }),
  );
  // A chunked body cut between chunks: the terminating 0-chunk never comes.
  const diesMidChunks = await startRawBackend(t, (socket) =>
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\nabcdefghij\r\n', () =>
        socket.destroy(),
      );
    }),
  );
  // Never answers; tells the test when the proxy gives up on the request.
  const upstreamClosed: Promise<IncomingMessage>[] = [];
  const waiting = await startBackend(t, (req) => {
    req.on('error', () => {});
    // Not once(): the socket may emit 'error' first (the proxy's FIN cuts the body mid-way).
    upstreamClosed.push(new Promise((resolve) => req.socket.once('close', () => resolve(req))));
    req.resume();
  });
  const healthy = await startBackend(t, echo('healthy'));

  const upstream = (url: string) => ({ servers: [{ url }], timeouts: { header: HEADER_TIMEOUT, idle: IDLE_TIMEOUT } });
  const names = {
    refused: `http://127.0.0.1:${refusedPort}`,
    reset: reset.url,
    garbage: garbage.url,
    silent: silent.url,
    stalls: stalls.url,
    'dies-mid-body': diesMidBody.url,
    'dies-mid-chunks': diesMidChunks.url,
    waiting: waiting.url,
    healthy: healthy.url,
  };
  const proxy = await startProxy(t, {
    upstreams: Object.fromEntries(Object.entries(names).map(([name, url]) => [name, upstream(url)])),
    routes: Object.keys(names).map((name) => ({ match: { path_prefix: `/${name}` }, upstream: name })),
  });
  const url = (name: keyof typeof names): string => `${proxy.url}/${name}`;

  await t.test('connection refused → 502', async () => {
    const res = await fetchOutcome(url('refused'));
    assert.equal(res.status, 502);
    assert.ok(res.complete, 'the error answer itself is complete');
    assertOpaque(res, refusedPort);
  });

  await t.test('connection reset by the backend → 502', async () => {
    const res = await fetchOutcome(url('reset'));
    assert.equal(res.status, 502);
    assertOpaque(res, reset.port);
    assert.ok(reset.sockets.length >= 1, 'the backend was reached');
  });

  await t.test('malformed response → 502', async () => {
    const res = await fetchOutcome(url('garbage'));
    assert.equal(res.status, 502);
    assertOpaque(res, garbage.port);
  });

  await t.test('backend slower than timeouts.header → 504 in about that time', async () => {
    const res = await fetchOutcome(url('silent'));
    assert.equal(res.status, 504);
    assertOpaque(res, silent.port);
    assert.ok(res.ms >= HEADER_TIMEOUT - 20, `not before the timeout (${res.ms.toFixed(0)} ms)`);
    assert.ok(res.ms < HEADER_TIMEOUT + TIMER_SLACK, `soon after the timeout (${res.ms.toFixed(0)} ms)`);
  });

  await t.test('backend silent longer than timeouts.idle mid-body → the client connection is cut', async () => {
    const res = await fetchOutcome(url('stalls'));
    assert.equal(res.status, 200, 'the head had already been sent');
    assert.equal(res.body.toString(), 'hello');
    assert.equal(res.complete, false, 'never ended as if complete');
    assert.ok(res.ms >= IDLE_TIMEOUT - 20, `not before the idle timeout (${res.ms.toFixed(0)} ms)`);
    assert.ok(res.ms < IDLE_TIMEOUT + TIMER_SLACK, `soon after the idle timeout (${res.ms.toFixed(0)} ms)`);
  });

  await t.test('backend dies mid-body (Content-Length) → the client connection is cut', async () => {
    const res = await fetchOutcome(url('dies-mid-body'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '1000', 'the framing is passed on, so the client can tell');
    assert.equal(res.body.length, 100);
    assert.equal(res.complete, false, 'never ended as if complete');
    assert.ok(res.error !== undefined, 'the client sees an error');
  });

  await t.test('backend dies mid-body (chunked) → no terminating chunk reaches the client', async () => {
    const res = await fetchOutcome(url('dies-mid-chunks'));
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), '0123456789abcdefghij');
    assert.equal(res.complete, false, 'never ended as if complete');
    assert.ok(res.error !== undefined, 'the client sees an error');
    // The same on the wire: whatever arrived, it does not end with the last-chunk marker.
    const raw = await rawRequest(proxy.port, 'GET /dies-mid-chunks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.match(raw, /transfer-encoding: chunked/i);
    assert.ok(raw.endsWith('abcdefghij\r\n'), `the data sent so far, then nothing: ${JSON.stringify(raw.slice(-40))}`);
  });

  await t.test('a client that hangs up while waiting aborts the upstream request', async () => {
    const before = upstreamClosed.length;
    const socket = connect(proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => upstreamClosed.length > before, 2000, 'the request to reach the backend');
    socket.destroy();
    const started = performance.now();
    await upstreamClosed[before];
    const ms = performance.now() - started;
    assert.ok(ms < HEADER_TIMEOUT, `closed at once, not by the header timeout (${ms.toFixed(0)} ms)`);
  });

  await t.test('a client that hangs up mid-upload aborts the upstream request', async () => {
    const before = upstreamClosed.length;
    const socket = connect(proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST /waiting HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    socket.write('x'.repeat(1000));
    await waitFor(() => upstreamClosed.length > before, 2000, 'the request to reach the backend');
    socket.destroy();
    const started = performance.now();
    const req = await upstreamClosed[before];
    const ms = performance.now() - started;
    assert.equal(req?.complete, false, 'the backend saw an aborted request, not a complete one');
    assert.ok(ms < HEADER_TIMEOUT, `closed at once, not by the header timeout (${ms.toFixed(0)} ms)`);
  });

  await t.test('after all this, the proxy still serves normal requests', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetchOutcome(url('healthy'));
      assert.equal(res.status, 200);
      assert.ok(res.complete);
      assert.equal(JSON.parse(res.body.toString()).name, 'healthy');
    }
    // Every failed exchange was finished: nothing is left counted as in flight.
    type Status = { upstreams: Record<string, { servers: { in_flight: number }[] }> };
    const inFlight = (): number =>
      Object.values((proxy.gatehouse.status() as Status).upstreams)
        .flatMap((u) => u.servers)
        .reduce((sum, s) => sum + s.in_flight, 0);
    await waitFor(() => inFlight() === 0, 2000, 'no request left in flight');
  });
});
