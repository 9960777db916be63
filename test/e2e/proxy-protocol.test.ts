/**
 * PROXY protocol listeners: the header (v1 or v2) names the client, for access rules, limits,
 * X-Forwarded-For and the access log; only trusted proxies may send it, it must come first and
 * in time, and the request after it is read as usual (in the same packet or not).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Connection, rawFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { readLines, tempFile } from '../helpers/process.ts';
import { protectionCounters, proxyToEcho } from '../helpers/proxy.ts';

const V2 = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(command: 0 | 1, family: number, addresses: Buffer): Buffer {
  const head = Buffer.from([0x20 | command, family, 0, 0]);
  head.writeUInt16BE(addresses.length, 2);
  return Buffer.concat([V2, head, addresses]);
}

function v2ipv4(source: string): Buffer {
  const bytes = Buffer.alloc(12);
  source.split('.').forEach((octet, i) => (bytes[i] = Number(octet)));
  bytes.set([127, 0, 0, 1], 4);
  return v2(1, 0x11, bytes);
}

/** A PROXY protocol listener behind which 127.0.0.10 is the trusted balancer. */
function proxyWith(t: TestContext, extra: Partial<ConfigInput> = {}) {
  return proxyToEcho(t, undefined, {
    listen: [{ address: '127.0.0.1:0', proxy_protocol: true }],
    trusted_proxies: ['127.0.0.10'],
    limits: { header_timeout: 400 },
    ...extra,
  });
}

const REQUEST = 'GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
const forwardedFor = (raw: string): string => (JSON.parse(raw.slice(raw.indexOf('{'))) as { headers: Record<string, string> }).headers['x-forwarded-for'] ?? '';

test('v1: the client named in the header is the client', async (t) => {
  const log = await tempFile('access.log', '');
  const { proxy } = await proxyWith(t, { access_log: { path: log } });
  const raw = await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n${REQUEST}`);
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.equal(forwardedFor(raw), '198.51.100.7');
  const v6 = await rawFrom('127.0.0.10', proxy.port, `PROXY TCP6 2001:db8::7 ::1 40000 80\r\n${REQUEST}`);
  assert.equal(forwardedFor(v6), '2001:db8::7');
  // The access log names the client in the header, not the balancer, as the remote address.
  const entries = (await readLines(log, 2)).map((line) => JSON.parse(line) as { remote: string; client?: string });
  assert.deepEqual(
    entries.map((e) => [e.remote, e.client]),
    [
      ['198.51.100.7', undefined],
      ['2001:db8::7', undefined],
    ],
  );
});

test('v2: IPv4 and IPv6 sources, and LOCAL (the balancer\'s own health check)', async (t) => {
  const { proxy } = await proxyWith(t);
  const raw = await rawFrom('127.0.0.10', proxy.port, Buffer.concat([v2ipv4('203.0.113.50'), Buffer.from(REQUEST)]));
  assert.equal(forwardedFor(raw), '203.0.113.50');
  const addresses = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000099', 'hex').copy(addresses);
  const v6 = await rawFrom('127.0.0.10', proxy.port, Buffer.concat([v2(1, 0x21, addresses), Buffer.from(REQUEST)]));
  assert.equal(forwardedFor(v6), '2001:db8::99');
  const local = await rawFrom('127.0.0.10', proxy.port, Buffer.concat([v2(0, 0x00, Buffer.alloc(0)), Buffer.from(REQUEST)]));
  assert.equal(forwardedFor(local), '127.0.0.10');
});

test('the header and the request may arrive in pieces, and keep-alive requests follow', async (t) => {
  const { proxy } = await proxyWith(t);
  const conn = await Connection.open(t, proxy.port, '127.0.0.10');
  const header = v2ipv4('192.0.2.44');
  conn.write(header.subarray(0, 7));
  await new Promise((resolve) => setImmediate(resolve));
  conn.write(header.subarray(7));
  await new Promise((resolve) => setImmediate(resolve));
  conn.write('GET /one HTTP/1.1\r\nHo');
  conn.write('st: x\r\n\r\n');
  const first = await conn.answer();
  assert.equal(first.status, 200);
  assert.equal((JSON.parse(first.body) as { headers: Record<string, string> }).headers['x-forwarded-for'], '192.0.2.44');
  const second = await conn.get('/two');
  assert.equal((JSON.parse(second.body) as { url: string }).url, '/two');
});

test('from an untrusted peer, without a header, with a bad one or a late one: closed', async (t) => {
  const { backend, proxy } = await proxyWith(t);
  assert.equal(await rawFrom('127.0.0.2', proxy.port, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n${REQUEST}`), '', 'untrusted peer');
  assert.equal(await rawFrom('127.0.0.10', proxy.port, REQUEST), '', 'no header');
  assert.equal(await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 nope 127.0.0.1 1 2\r\n${REQUEST}`), '', 'bad header');
  const conn = await Connection.open(t, proxy.port, '127.0.0.10');
  const opened = performance.now();
  conn.write('PROXY TCP4 198.51.100.7');
  const closedAfter = (await conn.closed) - opened;
  assert.ok(closedAfter >= 350 && closedAfter < 2000, `a half header is cut after header_timeout (${closedAfter.toFixed(0)} ms)`);
  assert.equal(backend.requests.length, 0);
  assert.equal(protectionCounters(proxy).proxy_protocol_errors, 4);
});

test('access rules and connection limits apply to the address in the header', async (t) => {
  const { proxy } = await proxyWith(t, { protection: { access: { deny: ['198.51.100.0/24'] }, max_connections_per_client: 1 } });
  assert.equal(await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 198.51.100.7 127.0.0.1 1 80\r\n${REQUEST}`), '', 'denied client');
  const first = await Connection.open(t, proxy.port, '127.0.0.10');
  first.write('PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n');
  assert.equal((await first.get('/')).status, 200);
  // A second connection for the same client (through the same balancer) is over the limit...
  assert.equal(await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 192.0.2.1 127.0.0.1 2 80\r\n${REQUEST}`), '');
  // ...another client through the same balancer is not.
  assert.match(await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 192.0.2.2 127.0.0.1 3 80\r\n${REQUEST}`), /^HTTP\/1\.1 200 /);
  first.socket.destroy();
  await waitFor(async () => /^HTTP\/1\.1 200 /.test(await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 192.0.2.1 127.0.0.1 4 80\r\n${REQUEST}`)), 3000, 'the slot to be free');
  assert.equal(protectionCounters(proxy).denied_connections, 1);
  assert.equal(protectionCounters(proxy).client_connection_limit, 1);
});

test('a listener without proxy_protocol treats a PROXY line as a bad request', async (t) => {
  const { backend, proxy } = await proxyWith(t, { listen: [{ address: '127.0.0.1:0' }] });
  const raw = await rawFrom('127.0.0.10', proxy.port, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n${REQUEST}`);
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(raw.match(/HTTP\/1\.1 /g)?.length, 1, 'the request after the line is not answered');
  assert.equal(backend.requests.length, 0, 'nor forwarded');
});
