import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { echo, startBackend } from '../helpers/backend.ts';
import { request, rawRequest } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

test('forwards method, path, query, headers and body, and returns the response', async (t) => {
  const backend = await startBackend(t, echo('a'));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/some/path?x=1&y=%20`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'x-custom': 'yes' },
    body: 'hello body',
  });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/some/path?x=1&y=%20');
  assert.equal(seen.headers['x-custom'], 'yes');
  assert.equal(seen.headers.host, `127.0.0.1:${proxy.port}`, 'the client Host is kept');
  assert.equal(seen.body, 'hello body');
});

test('passes the backend status, headers and body unchanged', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(418, { 'x-teapot': 'short', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
    res.end('I am a teapot');
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`);
  assert.equal(res.status, 418);
  assert.equal(res.headers['x-teapot'], 'short');
  assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(res.body, 'I am a teapot');
});

test('streams a chunked request body and a chunked response body', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    req.on('data', (c: Buffer) => res.write(c.toString().toUpperCase()));
    req.on('end', () => res.end('!'));
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const body = Readable.from(['one ', 'two ', 'three']);
  const res = await request(`${proxy.url}/`, { method: 'PUT', body });
  assert.equal(res.status, 200);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.body, 'ONE TWO THREE!');
  const sent = backend.requests[0]?.headers;
  assert.ok(sent?.['transfer-encoding'] === undefined || sent['content-length'] === undefined, 'never both framings');
});

test('HEAD gets the headers of GET and no body', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
    res.end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const raw = await rawRequest(proxy.port, `HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(raw, /content-length: 11/i);
  assert.ok(raw.endsWith('\r\n\r\n'), 'no body after the head');
});

test('Expect: 100-continue gets 100 Continue, then the body is forwarded', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const { connect } = await import('node:net');
  const socket = connect(proxy.port, '127.0.0.1');
  socket.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  let received = '';
  const done = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (c: Buffer) => {
    const before = received;
    received += c.toString();
    if (!before.includes('100 Continue') && received.includes('100 Continue')) socket.write('hello');
  });
  await done;
  assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  assert.match(received, /HTTP\/1\.1 200 OK/);
  const seen = JSON.parse(received.slice(received.indexOf('{')));
  assert.equal(seen.body, 'hello');
  assert.equal(seen.headers.expect, undefined, 'Expect is handled by the proxy, not forwarded');
});

test('response trailers are passed to the client', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('data');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await request(`${proxy.url}/`, { headers: { te: 'trailers' } });
  assert.equal(res.body, 'data');
  assert.equal(res.trailers['x-checksum'], 'abc123');
});

test('round robin spreads requests over the servers by weight', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const proxy = await startProxy(t, simpleProxyConfig([{ url: a.url, weight: 1 }, { url: b.url, weight: 3 }]));
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 40; i++) {
    const res = await request(`${proxy.url}/`);
    const name = JSON.parse(res.body).name as string;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  assert.deepEqual(counts, { a: 10, b: 30 });
});

test('keeps connections to the backend alive across requests', async (t) => {
  const backend = await startBackend(t, echo());
  const ports = new Set<number>();
  backend.server.on('request', (req) => ports.add(req.socket.remotePort ?? 0));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  for (let i = 0; i < 10; i++) await request(`${proxy.url}/`);
  assert.equal(ports.size, 1, 'sequential requests reuse one upstream connection');
});
