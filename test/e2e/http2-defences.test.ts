/**
 * HTTP/2 defences (docs/protocols.md#defences): PING, SETTINGS and CONTINUATION floods end the
 * flooding connection, a client that keeps its window shut loses its stream after send_timeout,
 * and while one connection floods, another client is served as usual.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { connect as h2Connect, constants } from 'node:http2';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.ts';
import { FLAG, FRAME, flood, frame, literal, rawH2 } from '../helpers/h2-frames.ts';
import { h2Request, h2Session } from '../helpers/h2.ts';
import { waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy, type RunningProxy } from '../helpers/proxy.ts';

async function h2cProxy(t: TestContext, http2: Record<string, unknown> = {}): Promise<RunningProxy> {
  const large = Buffer.alloc(1024 * 1024, 'x');
  const backend = await startBackend(t, (req, res) => res.end(req.url === '/large' ? large : 'ok'));
  return startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true, http2 }] });
}

/** One request from a well-behaved client, timed. */
async function timedRequest(t: TestContext, proxy: RunningProxy): Promise<number> {
  const started = performance.now();
  const session = await h2Session(t, proxy.url);
  const res = await h2Request(session, { ':path': '/' });
  assert.equal(res.status, 200);
  session.close();
  return performance.now() - started;
}

function closed(socket: Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : once(socket, 'close').then(() => undefined);
}

/** Floods on `attacker` while a second client makes requests: the flood ends, the other client is served quickly. */
async function floodEndsAndOthersAreServed(t: TestContext, proxy: RunningProxy, attacker: Socket, make: (i: number) => Buffer, max: number): Promise<number> {
  const flooding = flood(attacker, make, max);
  const slowest = Math.max(await timedRequest(t, proxy), await timedRequest(t, proxy), await timedRequest(t, proxy));
  const sent = await flooding;
  await Promise.race([closed(attacker), new Promise((_, reject) => setTimeout(() => reject(new Error('the flooding connection was not closed')), 5000))]);
  assert.ok(slowest < 1000, `another client was served in ${slowest.toFixed(0)} ms during the flood`);
  return sent;
}

test('HTTP/2 PING flood: a client that sends PINGs and never reads their ACKs is disconnected; others are served', async (t) => {
  const proxy = await h2cProxy(t);
  const attacker = await rawH2(proxy.port);
  const ping = frame(FRAME.PING, 0, 0, Buffer.alloc(8));
  const sent = await floodEndsAndOthersAreServed(t, proxy, attacker, () => ping, 1_000_000);
  t.diagnostic(`closed after ${sent} PINGs`);
  assert.ok(sent < 1_000_000, `the connection was closed after ${sent} PINGs`);
});

test('HTTP/2 SETTINGS flood: a client that sends SETTINGS and never reads their ACKs is disconnected; others are served', async (t) => {
  const proxy = await h2cProxy(t);
  const attacker = await rawH2(proxy.port);
  const settings = frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
  const sent = await floodEndsAndOthersAreServed(t, proxy, attacker, () => settings, 1_000_000);
  assert.ok(sent < 1_000_000, `the connection was closed after ${sent} SETTINGS frames`);
});

test('HTTP/2 CONTINUATION flood: a header block that never ends is cut off at the header list limit; others are served', async (t) => {
  const proxy = await h2cProxy(t);
  const attacker = await rawH2(proxy.port);
  const headers = Buffer.concat([Buffer.from([0x82, 0x86, 0x84]), literal(':authority', 'x')]); // GET, http, /
  attacker.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headers));
  const sent = await floodEndsAndOthersAreServed(t, proxy, attacker, (i) => frame(FRAME.CONTINUATION, 0, 1, literal(`x-flood-${i}`, 'y'.repeat(100))), 100_000);
  // limits.max_header_size (16 KiB by default) is ~140 of these frames; the rest are never held.
  assert.ok(sent < 100_000, `the connection was closed after ${sent} CONTINUATION frames`);
});

test('HTTP/2: a client that never opens its window loses the stream after send_timeout; the connection and others go on', async (t) => {
  const proxy = await h2cProxy(t, { send_timeout: 300 });
  // A window of 0: the server may send headers but no byte of the body.
  const stalled = h2Connect(proxy.url, { settings: { initialWindowSize: 0 } });
  t.after(() => stalled.destroy());
  stalled.on('error', () => {});
  const stream = stalled.request({ ':path': '/large' });
  let code: number | undefined;
  stream.on('error', () => {});
  stream.on('close', () => (code = stream.rstCode));
  await waitFor(() => code !== undefined, 5000, 'the stalled stream to be reset');
  assert.equal(code, constants.NGHTTP2_CANCEL);
  assert.equal((proxy.gatehouse.status() as { http2: { send_timeouts: number } }).http2.send_timeouts, 1);
  assert.ok((await timedRequest(t, proxy)) < 1000);
});

test('HTTP/2 concurrent streams: the client is told max_concurrent_streams, and a stream past it is refused', async (t) => {
  let active = 0;
  let most = 0;
  const backend = await startBackend(t, (_req, res) => {
    most = Math.max(most, ++active);
    setTimeout(() => {
      active--;
      res.end('ok');
    }, 300);
  });
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true, http2: { max_concurrent_streams: 5 } }] });
  const session = await h2Session(t, proxy.url);
  await once(session, 'remoteSettings');
  assert.equal(session.remoteSettings.maxConcurrentStreams, 5);
  // node:http2 holds streams past the peer's limit back on its own: all are answered, 5 at a time.
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => h2Request(session, { ':path': `/${i}` })));
  assert.ok(answers.every((a) => a.status === 200));
  assert.equal(most, 5);
  // A raw client that ignores the limit has the sixth stream reset.
  const raw = await rawH2(proxy.port);
  t.after(() => raw.destroy());
  let received = Buffer.alloc(0);
  raw.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  const request = Buffer.concat([Buffer.from([0x82, 0x86, 0x84]), literal(':authority', 'x')]);
  for (let i = 0; i < 6; i++) raw.write(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1 + 2 * i, request));
  const RST_STREAM = 3;
  await waitFor(() => framesOf(received).some(([type, , stream]) => type === RST_STREAM && stream === 11), 2000, 'the sixth stream (11) to be reset');
  assert.equal(raw.destroyed, false, 'the connection itself goes on');
});

test('HTTP/2 raw frames: a client that sends a few PINGs and reads gets their ACKs and stays connected (the floods above are what is refused)', async (t) => {
  const proxy = await h2cProxy(t);
  const client = await rawH2(proxy.port);
  t.after(() => client.destroy());
  let received = Buffer.alloc(0);
  client.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  for (let i = 0; i < 10; i++) client.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8, i)));
  const acks = (): number => {
    let count = 0;
    for (let at = 0; at + 9 <= received.length; at += 9 + received.readUIntBE(at, 3)) {
      if (received[at + 3] === FRAME.PING && received[at + 4] === FLAG.ACK) count++;
    }
    return count;
  };
  await waitFor(() => acks() === 10, 2000, 'ten PING ACKs');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(client.destroyed, false);
});
/** [type, flags, stream] of each whole frame in `data`. */
function framesOf(data: Buffer): [number, number, number][] {
  const list: [number, number, number][] = [];
  for (let at = 0; at + 9 <= data.length; at += 9 + data.readUIntBE(at, 3)) list.push([data[at + 3] as number, data[at + 4] as number, data.readUInt32BE(at + 5)]);
  return list;
}

test('HTTP/2: hundreds of streams cut off by their clients mid-answer free their backend connections; the proxy keeps serving', async (t) => {
  const body = Buffer.alloc(100, 'x');
  const backend = await startBackend(t, (_req, res) => setTimeout(() => res.end(body), 5));
  const proxy = await startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', h2c: true }] });
  for (let round = 0; round < 3; round++) {
    const sessions = Array.from({ length: 50 }, () => h2Connect(proxy.url));
    for (const session of sessions) {
      session.on('error', () => {});
      for (let i = 0; i < 10; i++) session.request({ ':path': '/small' }).on('error', () => {}).resume();
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    for (const session of sessions) session.destroy();
  }
  // Before the fix the answers to reset streams waited for a 'drain' that never came, holding
  // every backend connection: this request then hung.
  const inFlight = (): number => (proxy.gatehouse.status() as { upstreams: { app: { in_flight: number } } }).upstreams.app.in_flight;
  assert.ok((await timedRequest(t, proxy)) < 3000);
  await waitFor(() => inFlight() === 0, 5000, 'every cut-off request to let go of its backend connection');
});
