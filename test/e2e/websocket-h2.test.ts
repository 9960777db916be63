/** WebSocket over HTTP/2 (RFC 8441 extended CONNECT) to HTTP/1.1 WebSocket servers. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { test, type TestContext } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { h2Request, h2Session } from '../helpers/h2.ts';
import { waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

async function setUp(t: TestContext, websocket = true, routes?: ConfigInput['routes']) {
  const backend = await startBackend(t, echo());
  const accepted: { socket: WebSocket; headers: IncomingHttpHeaders }[] = [];
  if (websocket) {
    const wss = new WebSocketServer({ server: backend.server });
    wss.on('connection', (socket, req) => {
      accepted.push({ socket, headers: req.headers });
      socket.send(`hello ${req.url} via ${String(req.headers['x-forwarded-for'])}`);
      socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
    });
    t.after(() => wss.close());
  }
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const base = simpleProxyConfig([backend.url]);
  const proxy = await startProxy(t, { ...base, routes: routes ?? base.routes, listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] } }] } as ConfigInput);
  const session = await h2Session(t, `https://127.0.0.1:${proxy.port}`, { ca: ca.cert, servername: 'site.test' });
  await waitFor(() => session.remoteSettings.enableConnectProtocol === true, 2000, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
  return { proxy, session, accepted };
}

function openWebSocket(session: ClientHttp2Session, path: string): ClientHttp2Stream {
  return session.request(
    { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': path, ':authority': 'site.test', 'sec-websocket-version': '13' },
    { endStream: false },
  );
}

/** A masked client text frame (RFC 6455 §5.2), payloads under 64 KiB. */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)))]);
}

/** Collects the server's (unmasked) text frames from the stream. */
function readFrames(stream: ClientHttp2Stream): string[] {
  const messages: string[] = [];
  let buffered = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (buffered.length < 2) return;
      let length = (buffered[1] as number) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffered.length < 4) return;
        length = buffered.readUInt16BE(2);
        offset = 4;
      }
      if (buffered.length < offset + length) return;
      messages.push(buffered.subarray(offset, offset + length).toString());
      buffered = buffered.subarray(offset + length);
    }
  });
  return messages;
}

test('WebSocket over HTTP/2: extended CONNECT becomes an HTTP/1.1 Upgrade to the server, messages pass both ways', async (t) => {
  const { proxy, session, accepted } = await setUp(t);
  const stream = openWebSocket(session, '/chat?room=1');
  const [head] = (await once(stream, 'response')) as [IncomingHttpHeaders];
  assert.equal(head[':status'], 200);
  assert.equal(head['sec-websocket-accept'], undefined, 'the HTTP/1.1 handshake stays between Gatehouse and the server');
  const messages = readFrames(stream);
  stream.write(clientFrame('ping'));
  stream.write(clientFrame('x'.repeat(1000)));
  await waitFor(() => messages.length >= 3, 3000, 'three messages');
  assert.equal(messages[0], 'hello /chat?room=1 via 127.0.0.1');
  assert.equal(messages[1], 'echo:ping');
  assert.equal(messages[2], `echo:${'x'.repeat(1000)}`);
  assert.equal(accepted[0]?.headers.host, 'site.test');
  const status = () => (proxy.gatehouse.status() as { upstreams: { app: { servers: { in_flight: number }[] } } }).upstreams.app.servers[0]?.in_flight;
  assert.equal(status(), 1, 'an open tunnel counts as in flight');

  // Two tunnels share one connection.
  const second = openWebSocket(session, '/other');
  const secondMessages = readFrames(second);
  await waitFor(() => secondMessages.length >= 1, 3000, 'the second tunnel');
  assert.equal(secondMessages[0], 'hello /other via 127.0.0.1');

  // Closing the stream closes the server's side and releases the tunnel.
  stream.close();
  second.close();
  await waitFor(() => accepted.every((a) => a.socket.readyState === WebSocket.CLOSED), 3000, 'the server side to close');
  await waitFor(() => status() === 0, 3000, 'the tunnels to be released');
  // The connection itself is still good for requests.
  assert.equal((await h2Request(session, { ':authority': 'site.test' })).status, 200);
  // Last: a failure with the tunnels still open would leave the test waiting on them.
  assert.match(String(head['x-request-id']), /^[0-9a-f]{32}$/, "Gatehouse's own fields on the opened tunnel's head");
});

test('WebSocket over HTTP/2: a server that does not switch protocols is a 502; plain CONNECT is refused', async (t) => {
  const { session } = await setUp(t, false);
  const stream = openWebSocket(session, '/');
  const [head] = (await once(stream, 'response')) as [IncomingHttpHeaders];
  assert.equal(head[':status'], 502, 'never a 2xx, which would mean the tunnel is open');
  stream.resume();
  assert.match(String(head['x-request-id']), /^[0-9a-f]{32}$/, "Gatehouse's own fields on a refusal");
  const plain = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' }, { endStream: false });
  const [plainHead] = (await once(plain, 'response')) as [IncomingHttpHeaders];
  assert.equal(plainHead[':status'], 400);
  plain.resume();
});

test('WebSocket over HTTP/2: no route is a 404, a route that does not forward a 400; neither reaches a server', async (t) => {
  const routes = [
    { match: { path_prefix: '/fixed' }, respond: { status: 200, body: 'fixed' } },
    { match: { path_prefix: '/ws' }, upstream: 'app' },
  ];
  const { session, accepted } = await setUp(t, true, routes);
  for (const [path, status] of [['/nowhere', 404], ['/fixed', 400]] as const) {
    const stream = openWebSocket(session, path);
    const [head] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    assert.equal(head[':status'], status, path);
    stream.resume();
  }
  const open = openWebSocket(session, '/ws');
  const [head] = (await once(open, 'response')) as [IncomingHttpHeaders];
  assert.equal(head[':status'], 200, 'the forwarded route still opens');
  open.close();
  assert.equal(accepted.length, 1);
});
