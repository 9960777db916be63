import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { echo, startBackend } from '../helpers/backend.ts';
import { rawRequest, waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

async function startWebSocketBackend(t: import('node:test').TestContext) {
  const backend = await startBackend(t, echo());
  const wss = new WebSocketServer({ server: backend.server });
  /** The backend side of each tunnel, as it was accepted. */
  const accepted: WebSocket[] = [];
  wss.on('connection', (socket, req) => {
    accepted.push(socket);
    socket.send(`hello ${req.url} via ${String(req.headers['x-forwarded-for'])}`);
    socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
  });
  t.after(() => wss.close());
  return Object.assign(backend, { accepted });
}

test('a WebSocket connection passes through to the backend both ways', async (t) => {
  const backend = await startWebSocketBackend(t);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const client = new WebSocket(`ws://127.0.0.1:${proxy.port}/chat?room=1`);
  const messages: string[] = [];
  client.on('message', (data) => messages.push(data.toString()));
  await once(client, 'open');
  client.send('ping');
  client.send(Buffer.alloc(100_000, 'x'));
  await new Promise<void>((resolve) => {
    const check = () => (messages.length >= 3 ? resolve() : setTimeout(check, 5));
    check();
  });
  assert.equal(messages[0], 'hello /chat?room=1 via 127.0.0.1');
  assert.equal(messages[1], 'echo:ping');
  assert.equal(messages[2]?.length, 'echo:'.length + 100_000);
  client.close();
  await once(client, 'close');
});

test('closing the client closes the backend side of the tunnel', async (t) => {
  const backend = await startWebSocketBackend(t);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const client = new WebSocket(`ws://127.0.0.1:${proxy.port}/`);
  await once(client, 'open');
  const server = proxy.gatehouse.status() as { upstreams: { app: { servers: { in_flight: number }[] } } };
  assert.equal(server.upstreams.app.servers[0]?.in_flight, 1, 'an open tunnel counts as in flight');
  const backendSide = backend.accepted[0];
  assert.ok(backendSide !== undefined, 'the backend accepted the tunnel');
  client.terminate();
  const deadline = Date.now() + 3000;
  while ((proxy.gatehouse.status() as typeof server).upstreams.app.servers[0]?.in_flight !== 0) {
    assert.ok(Date.now() < deadline, 'tunnel released');
    await new Promise((r) => setTimeout(r, 10));
  }
  await waitFor(() => backendSide.readyState === WebSocket.CLOSED, 3000, 'the backend side of the tunnel to close');
});

test('an upgrade the backend refuses is answered with its status', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(403);
    res.end();
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const raw = await rawRequest(
    proxy.port,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 403 /);
});

test('an upgrade to a dead backend gets 502', async (t) => {
  const { closedPort } = await import('../helpers/backend.ts');
  const port = await closedPort();
  const proxy = await startProxy(t, simpleProxyConfig([`http://127.0.0.1:${port}`]));
  const raw = await rawRequest(
    proxy.port,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 502 /);
  assert.doesNotMatch(raw, new RegExp(String(port)));
});

test('a WebSocket upgrade to an upstream that speaks HTTP/2 (protocol h2c) is refused with 501', async (t) => {
  const backend = await startWebSocketBackend(t);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url], { protocol: 'h2c' }));
  const answer = await rawRequest(
    proxy.port,
    'GET /chat HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  );
  assert.match(answer, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  assert.equal(backend.accepted.length, 0);
});
