/**
 * IP access rules: global (checked at accept: closed, or 403) and per route (403), IPv4 and
 * IPv6, inline or from list files that are re-read when they change, and the client address
 * behind a trusted proxy.
 */
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Connection, rawFrom, requestFrom } from '../helpers/clients.ts';
import { rawRequest, request, waitFor } from '../helpers/http.ts';
import { tempFile } from '../helpers/process.ts';
import { protectionCounters, proxyToEcho } from '../helpers/proxy.ts';

function proxyWith(t: import('node:test').TestContext, extra: Partial<ConfigInput>, routes?: ConfigInput['routes']) {
  return proxyToEcho(t, routes, extra);
}

const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

test('global deny: the connection is closed at accept, before any byte is read; others are served', async (t) => {
  const { backend, proxy } = await proxyWith(t, { protection: { access: { deny: ['127.0.0.2', '10.0.0.0/8'] } } });
  assert.equal(await rawFrom('127.0.0.2', proxy.port, GET), '', 'closed without an answer');
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/`)).status, 200);
  assert.equal(backend.requests.length, 1);
  assert.equal(protectionCounters(proxy).denied_connections, 1);
});

test('global allow list: only listed clients get in, and a deny entry carves out of it', async (t) => {
  const { proxy } = await proxyWith(t, { protection: { access: { allow: ['127.0.0.0/29'], deny: ['127.0.0.4'] } } });
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/`)).status, 200);
  assert.equal(await rawFrom('127.0.0.4', proxy.port, GET), '');
  assert.equal(await rawFrom('127.0.0.9', proxy.port, GET), '');
  assert.equal(protectionCounters(proxy).denied_connections, 2);
});

test('on_deny: 403 answers the refused client 403 and closes; the backend sees nothing', async (t) => {
  const { backend, proxy } = await proxyWith(t, { protection: { access: { deny: ['127.0.0.2'], on_deny: 403 } } });
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  const answer = await conn.get('/');
  assert.equal(answer.status, 403);
  assert.match(answer.head, /\r\nconnection: close/);
  await conn.closed;
  assert.equal(backend.requests.length, 0);
  assert.equal(protectionCounters(proxy).denied_requests, 1);
});

test('per-route rules: 403 on the guarded route only, the connection stays usable', async (t) => {
  const { proxy } = await proxyWith(t, {}, [
    { name: 'admin', match: { path_prefix: '/admin' }, upstream: 'app', access: { allow: ['127.0.0.3'] } },
    { name: 'internal', match: { path_prefix: '/internal' }, upstream: 'app', access: { deny: ['127.0.0.0/8'] } },
    { match: {}, upstream: 'app' },
  ]);
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  assert.equal((await conn.get('/admin/x')).status, 403);
  assert.equal((await conn.get('/public')).status, 200, 'same connection, other route');
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/admin/x`)).status, 200);
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/internal`)).status, 403);
  assert.equal(protectionCounters(proxy).denied_requests, 2);
});

test('IPv6: rules on an IPv6 listener', async (t) => {
  const { backend, proxy } = await proxyWith(t, { listen: [{ address: '[::1]:0' }] }, [
    { match: { path: '/v6-denied' }, upstream: 'app', access: { deny: ['::1/128'] } },
    { match: { path: '/v4-only' }, upstream: 'app', access: { allow: ['127.0.0.0/8'] } },
    { match: { path: '/doc-range' }, upstream: 'app', access: { deny: ['2001:db8::/32'] } },
  ]);
  const base = `http://[::1]:${proxy.port}`;
  assert.equal((await request(`${base}/v6-denied`)).status, 403);
  assert.equal((await request(`${base}/v4-only`)).status, 403);
  const allowed = await request(`${base}/doc-range`);
  assert.equal(allowed.status, 200);
  // The rules saw the IPv6 client as ::1 (not as an IPv4-mapped or empty address).
  assert.equal((JSON.parse(allowed.body) as { headers: Record<string, string> }).headers['x-forwarded-for'], '::1');
  assert.equal(backend.requests.length, 1, 'the refused requests never reached the backend');
});

test('a deny_file is re-read when it changes (in place or replaced by rename); a bad file keeps the old list', async (t) => {
  const file = await tempFile('deny.txt', '# nobody yet\n192.0.2.1\n');
  const { proxy } = await proxyWith(t, {}, [{ match: {}, upstream: 'app', access: { deny_file: file } }]);
  const statusFrom = async (address: string): Promise<number> => (await requestFrom(address, `${proxy.url}/`)).status;
  assert.equal(await statusFrom('127.0.0.2'), 200);
  await writeFile(file, '192.0.2.1\n127.0.0.2 # added\n');
  await waitFor(async () => (await statusFrom('127.0.0.2')) === 403, 5000, 'the edited file to apply');
  assert.equal(await statusFrom('127.0.0.3'), 200);
  await writeFile(file, '127.0.0.3\nnot-an-address\n');
  const listFile = (): { errors: number } => (proxy.gatehouse.status() as { protection: { list_files: { errors: number }[] } }).protection.list_files[0] ?? { errors: 0 };
  await waitFor(() => listFile().errors === 1, 5000, 'the bad file to be read and refused');
  assert.equal(await statusFrom('127.0.0.2'), 403, 'the previous list still holds');
  assert.equal(await statusFrom('127.0.0.3'), 200);
  await writeFile(`${file}.new`, '127.0.0.3\n');
  await rename(`${file}.new`, file);
  await waitFor(async () => (await statusFrom('127.0.0.3')) === 403, 5000, 'the replaced file to apply');
  assert.equal(await statusFrom('127.0.0.2'), 200);
});

test('global deny_file: a client added while its keep-alive connection is open is refused on its next request', async (t) => {
  const file = await tempFile('deny.txt', '192.0.2.1\n');
  const { proxy } = await proxyWith(t, { protection: { access: { deny_file: file } } });
  const conn = await Connection.open(t, proxy.port, '127.0.0.2');
  assert.equal((await conn.get('/')).status, 200);
  await writeFile(file, '192.0.2.1\n127.0.0.2\n');
  await waitFor(async () => (await rawFrom('127.0.0.2', proxy.port, GET)) === '', 5000, 'new connections to be refused');
  const answer = await conn.get('/');
  assert.equal(answer.status, 403, 'the open connection is checked again after the change');
  await conn.closed;
});

test('an unreadable or bad list file fails the configuration with file:line', async (t) => {
  const bad = await tempFile('deny.txt', '10.0.0.1\n10.0.0.300\n');
  await assert.rejects(proxyWith(t, { protection: { access: { deny_file: bad } } }), /deny\.txt:2: "10\.0\.0\.300" is not an IP address/);
  await assert.rejects(proxyWith(t, {}, [{ match: {}, upstream: 'app', access: { allow_file: `${bad}.missing` } }]), /cannot read the IP list/);
  await assert.rejects(proxyWith(t, {}, [{ match: {}, upstream: 'app', access: { deny: ['10.0.0.0/33'] } }]), /routes\[0\]\.access\.deny\[0\]: must be an IP address or CIDR range/);
});

test('a list of 100,000 ranges loads and answers quickly', async (t) => {
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`);
  lines.push('127.0.0.2');
  const file = await tempFile('deny.txt', `${lines.join('\n')}\n`);
  const { proxy } = await proxyWith(t, { protection: { access: { deny_file: file } } });
  assert.equal(await rawFrom('127.0.0.2', proxy.port, GET), '');
  const started = performance.now();
  for (let i = 0; i < 20; i++) assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/`)).status, 200);
  assert.ok(performance.now() - started < 2000);
});

test('behind a trusted proxy the client is read from X-Forwarded-For, from nobody else', async (t) => {
  const { backend, proxy } = await proxyWith(t, { trusted_proxies: ['127.0.0.5'] }, [
    { match: {}, upstream: 'app', access: { deny: ['203.0.113.0/24'] } },
  ]);
  const via = (from: string, xff: string) => requestFrom(from, `${proxy.url}/`, { headers: { 'x-forwarded-for': xff } });
  assert.equal((await via('127.0.0.5', '203.0.113.9')).status, 403);
  assert.equal((await via('127.0.0.5', '203.0.113.9, 127.0.0.5')).status, 403, 'trusted hops are skipped');
  assert.equal((await via('127.0.0.5', '198.51.100.1')).status, 200);
  assert.equal((await via('127.0.0.5', '203.0.113.9, 198.51.100.1')).status, 200, 'a forged left part is ignored');
  assert.equal((await via('127.0.0.2', '203.0.113.9')).status, 200, 'an untrusted peer cannot name a client');
  const seen = JSON.parse((await via('127.0.0.2', '203.0.113.9')).body) as { headers: Record<string, string> };
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.2', 'and its X-Forwarded-For is replaced');
  assert.equal(backend.requests.length, 4);
});

test('global rules behind a trusted proxy: decided per request, and the proxy\'s connection stays open', async (t) => {
  const { proxy } = await proxyWith(t, { trusted_proxies: ['127.0.0.5'], protection: { access: { deny: ['203.0.113.0/24'] } } });
  const conn = await Connection.open(t, proxy.port, '127.0.0.5');
  assert.equal((await conn.get('/', { 'x-forwarded-for': '203.0.113.9' })).status, 403);
  assert.equal((await conn.get('/', { 'x-forwarded-for': '198.51.100.1' })).status, 200);
  assert.ok(!conn.isClosed);
  assert.equal(await rawRequest(proxy.port, GET).then((r) => /^HTTP\/1\.1 200/.test(r)), true, '127.0.0.1 is not denied');
});
