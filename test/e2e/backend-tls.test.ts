/**
 * TLS to backends: https:// servers verified against a configured CA, SNI from the URL or the
 * configured name (never the client's Host), a client certificate for backends that require one,
 * verify: false, health checks over TLS, and file problems reported with file:line:col.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import type { Handler } from '../helpers/backend.ts';
import { startHttpsBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair, type TestCa } from '../helpers/certs.ts';
import { errorOf } from '../helpers/config.ts';
import { request, waitFor } from '../helpers/http.ts';
import { collectingLogger } from '../helpers/logs.ts';
import { readLines } from '../helpers/process.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

/** Answers with what the TLS connection carried: the SNI name and the client certificate's subject. */
const tlsEcho: Handler = (req, res) => {
  const socket = req.socket as TLSSocket;
  const peer = socket.getPeerCertificate();
  const body = JSON.stringify({
    sni: socket.servername,
    client: peer !== null && typeof peer === 'object' && 'subject' in peer ? (peer.subject?.CN ?? null) : null,
    host: req.headers.host,
    url: req.url,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

interface Setup {
  readonly ca: TestCa;
  readonly dir: string;
  /** The CA's certificate as a file. */
  readonly caFile: string;
}

async function setUp(t: TestContext): Promise<Setup> {
  const ca = await createCa('Backend CA');
  const dir = await tempDir(t);
  const caFile = join(dir, 'backend-ca.pem');
  await writeFile(caFile, ca.cert);
  return { ca, dir, caFile };
}

/** An https backend with a certificate for `names` from `ca`. */
async function httpsBackend(t: TestContext, ca: TestCa, names: string[], extra: Record<string, unknown> = {}) {
  const leaf = await ca.issue({ names });
  return startHttpsBackend(t, { cert: leaf.cert, key: leaf.key, ...extra }, tlsEcho);
}

test('an https:// server with a certificate from the configured CA is verified and used; SNI is the URL host or the configured name, never the client Host', async (t) => {
  const { ca, caFile } = await setUp(t);
  const byIp = await httpsBackend(t, ca, ['127.0.0.1']);
  const byName = await httpsBackend(t, ca, ['localhost']);
  const named = await httpsBackend(t, ca, ['api.internal']);
  const proxy = await startProxy(t, {
    upstreams: {
      ip: { servers: [{ url: byIp.url }], tls: { ca: caFile } },
      name: { servers: [{ url: `https://localhost:${byName.port}` }], tls: { ca: caFile } },
      configured: { servers: [{ url: named.url }], tls: { ca: caFile, servername: 'api.internal' } },
    },
    routes: [
      { match: { path_prefix: '/ip' }, upstream: 'ip' },
      { match: { path_prefix: '/name' }, upstream: 'name' },
      { match: { path_prefix: '/configured' }, upstream: 'configured' },
    ],
  });
  const headers = { host: 'public.example' };
  const ip = await request(`${proxy.url}/ip`, { headers });
  assert.equal(ip.status, 200, ip.body);
  // An IP address is never sent as SNI (RFC 6066 §3); the certificate is checked for the address.
  assert.deepEqual(JSON.parse(ip.body), { sni: false, client: null, host: 'public.example', url: '/ip' });
  const name = await request(`${proxy.url}/name`, { headers });
  assert.equal(name.status, 200, name.body);
  assert.equal(JSON.parse(name.body).sni, 'localhost');
  const configured = await request(`${proxy.url}/configured`, { headers });
  assert.equal(configured.status, 200, configured.body);
  assert.equal(JSON.parse(configured.body).sni, 'api.internal');
  // Clients with other Host headers share the connection: the name does not follow them.
  for (const host of ['a.example', 'b.example', 'c.example']) {
    const res = await request(`${proxy.url}/configured`, { headers: { host } });
    assert.equal(JSON.parse(res.body).sni, 'api.internal');
  }
  assert.equal(new Set(named.requests.map((r) => r.socket)).size, 1, 'one connection for every client Host');
});

test('a certificate the configured CA did not sign, or for another name, is refused: 502 and TLS_CERT_INVALID in the access log', async (t) => {
  const { ca, dir, caFile } = await setUp(t);
  const other = await createCa('Someone else');
  const stranger = await httpsBackend(t, other, ['127.0.0.1']);
  const wrongName = await httpsBackend(t, ca, ['elsewhere.internal']);
  const log = join(dir, 'access.log');
  const proxy = await startProxy(t, {
    upstreams: {
      stranger: { servers: [{ url: stranger.url }], tls: { ca: caFile } },
      wrong_name: { servers: [{ url: wrongName.url }], tls: { ca: caFile, servername: 'api.internal' } },
    },
    routes: [
      { match: { path_prefix: '/stranger' }, upstream: 'stranger' },
      { match: { path_prefix: '/wrong-name' }, upstream: 'wrong_name' },
    ],
    access_log: { path: log },
  });
  const first = await request(`${proxy.url}/stranger`);
  assert.equal(first.status, 502);
  assert.equal(first.body, '502 Bad Gateway\n');
  assert.equal(stranger.requests.length, 0, 'nothing was sent to the unverified server');
  const second = await request(`${proxy.url}/wrong-name`);
  assert.equal(second.status, 502);
  assert.equal(wrongName.requests.length, 0);
  const lines = (await readLines(log, 2)).map((l) => JSON.parse(l) as { error?: string; path?: string });
  assert.deepEqual(
    lines.map((l) => l.error),
    ['TLS_CERT_INVALID', 'TLS_CERT_INVALID'],
  );
});

test('a certificate failure is a connect failure: the request is retried on the next server', async (t) => {
  const { ca, caFile } = await setUp(t);
  const other = await createCa('Someone else');
  const bad = await httpsBackend(t, other, ['127.0.0.1']);
  const good = await httpsBackend(t, ca, ['127.0.0.1']);
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([bad.url, good.url], { balance: 'first', tls: { ca: caFile } }),
  });
  // A POST too: nothing reached the first server, so any method may go again.
  const res = await request(`${proxy.url}/x`, { method: 'POST', body: 'payload' });
  assert.equal(res.status, 200, res.body);
  assert.equal(good.requests.length, 1);
});

test('a backend that requires a client certificate gets the configured one; without it the request fails with 502', async (t) => {
  const { ca, dir, caFile } = await setUp(t);
  const clientCa = await createCa('Client CA');
  const client = await writePair(dir, 'client', await clientCa.issue({ names: ['gatehouse-client'], client: true }));
  const mtls = { ca: clientCa.cert, requestCert: true, rejectUnauthorized: true };
  const strict = await httpsBackend(t, ca, ['127.0.0.1'], mtls);
  const strict12 = await httpsBackend(t, ca, ['127.0.0.1'], { ...mtls, maxVersion: 'TLSv1.2' });
  const log = join(dir, 'access.log');
  const proxy = await startProxy(t, {
    upstreams: {
      mtls: { servers: [{ url: strict.url }], tls: { ca: caFile, cert: client.cert, key: client.key } },
      anonymous: { servers: [{ url: strict.url }], tls: { ca: caFile }, retries: { attempts: 1 } },
      anonymous12: { servers: [{ url: strict12.url }], tls: { ca: caFile }, retries: { attempts: 1 } },
    },
    routes: [
      { match: { path_prefix: '/mtls' }, upstream: 'mtls' },
      { match: { path_prefix: '/anonymous12' }, upstream: 'anonymous12' },
      { match: { path_prefix: '/anonymous' }, upstream: 'anonymous' },
    ],
    access_log: { path: log },
  });
  const ok = await request(`${proxy.url}/mtls`);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).client, 'gatehouse-client');
  assert.equal((await request(`${proxy.url}/anonymous`)).status, 502);
  assert.equal((await request(`${proxy.url}/anonymous12`)).status, 502);
  const lines = (await readLines(log, 3)).map((l) => JSON.parse(l) as { error?: string });
  assert.equal(lines[0]?.error, undefined);
  // TLS 1.3 finishes the client's handshake before the server checks its certificate: undici
  // sees the connection close (its "other side closed") before it reads the server's alert.
  assert.equal(lines[1]?.error, 'UPSTREAM_RESET');
  // TLS 1.2 refuses inside the handshake.
  assert.equal(lines[2]?.error, 'TLS_HANDSHAKE_FAILED');
  assert.equal(strict.requests.length, 1);
});

test('verify: false accepts any certificate, and says so at load with a warning', async (t) => {
  const other = await createCa('Unknown');
  const backend = await httpsBackend(t, other, ['somewhere.else']);
  const { logger, lines } = collectingLogger({ level: 'warn' });
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    access_log: { enabled: false },
    ...simpleProxyConfig([backend.url], { tls: { verify: false } }),
  });
  const gatehouse = await Gatehouse.start(config, { logger });
  t.after(() => gatehouse.stop(500));
  const res = await request(`http://127.0.0.1:${gatehouse.addresses[0]?.port}/`);
  assert.equal(res.status, 200, res.body);
  const warning = lines.find((l) => String(l['msg']).includes('tls.verify is false'));
  assert.ok(warning, `a warning, got ${JSON.stringify(lines)}`);
  assert.equal(warning['level'], 40);
});

test('an https:// server without a tls block is checked against the system roots: a private CA is refused', async (t) => {
  const { ca } = await setUp(t);
  const backend = await httpsBackend(t, ca, ['127.0.0.1']);
  const proxy = await startProxy(t, simpleProxyConfig([backend.url], { retries: { attempts: 1 } }));
  assert.equal((await request(proxy.url)).status, 502);
  assert.equal(backend.requests.length, 0);
});

test('health checks of https:// servers use the upstream TLS settings: the right CA passes, a wrong one takes the server down', async (t) => {
  const { ca, caFile } = await setUp(t);
  const other = await createCa('Someone else');
  const good = await httpsBackend(t, ca, ['api.internal']);
  const stranger = await httpsBackend(t, other, ['api.internal']);
  const health_check = { path: '/health', interval: '50ms', rise: 1, fall: 1 };
  const proxy = await startProxy(t, {
    upstreams: {
      good: { servers: [{ url: good.url }], tls: { ca: caFile, servername: 'api.internal' }, health_check },
      stranger: { servers: [{ url: stranger.url }], tls: { ca: caFile, servername: 'api.internal' }, health_check },
    },
    routes: [{ match: {}, upstream: 'good' }],
  });
  type Status = { upstreams: Record<string, { servers: { state: string; last_check: { ok: boolean; detail: string } | null }[] }> };
  const server = (name: string) => (proxy.gatehouse.status() as Status).upstreams[name]?.servers[0];
  // A check that timed out on a loaded machine also takes the server down: wait for one that was refused.
  const refused = (): boolean => server('stranger')?.state === 'down' && /CERT|VERIFY|SIGNATURE|ISSUER/i.test(server('stranger')?.last_check?.detail ?? '');
  await waitFor(() => server('good')?.last_check?.ok === true && refused(), 5000, 'the checks');
  assert.equal(server('good')?.state, 'up');
  assert.match(server('stranger')?.last_check?.detail ?? '', /CERT|VERIFY|SIGNATURE|ISSUER/i);
  assert.equal(stranger.requests.length, 0, 'no check request went to the unverified server');
  const check = good.requests.find((r) => r.url === '/health');
  assert.ok(check, 'the good server was checked');
  assert.equal((check.socket as TLSSocket).servername, 'api.internal');
});

test('tls files that cannot be used are reported at load with file:line:col, the field and the file', async (t) => {
  const { ca, dir, caFile } = await setUp(t);
  const a = await writePair(dir, 'a', await ca.issue({ names: ['a'], client: true }));
  const b = await writePair(dir, 'b', await ca.issue({ names: ['b'], client: true }));
  const missing = join(dir, 'missing.pem');
  const text = (tls: string, url = 'https://127.0.0.1:8443'): string =>
    ['listen: [{ address: "127.0.0.1:0" }]', 'upstreams:', '  app:', `    servers: [{ url: "${url}" }]`, '    tls:', tls].join('\n');
  assert.equal(errorOf(text(`      ca: ${missing}`)), `gatehouse.yaml:6:11 upstreams.app.tls.ca: ${missing}: cannot read the CA certificate file (ENOENT)`);
  assert.equal(errorOf(text(`      ca: ${a.key}`)), `gatehouse.yaml:6:11 upstreams.app.tls.ca: ${a.key}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  assert.equal(
    errorOf(text(`      ca: ${caFile}\n      cert: ${a.cert}\n      key: ${b.key}`)),
    `gatehouse.yaml:8:12 upstreams.app.tls.key: ${b.key}: this key does not belong to the certificate in ${a.cert}`,
  );
  assert.equal(errorOf(text(`      cert: ${a.cert}`)), 'gatehouse.yaml:6:7 upstreams.app.tls.key: is required with cert');
  assert.equal(errorOf(text(`      ca: ${caFile}`, 'http://127.0.0.1:3000')), 'gatehouse.yaml:6:7 upstreams.app.tls: only applies to https:// servers, and this upstream has none');
  assert.equal(errorOf(text('      servername: "not a name"')), 'gatehouse.yaml:6:19 upstreams.app.tls.servername: must be a DNS name such as api.internal');
  assert.equal(errorOf(text('      servername: "api.internal."')), 'gatehouse.yaml:6:19 upstreams.app.tls.servername: must be a DNS name such as api.internal', 'SNI has no trailing dot (RFC 6066 §3)');
  assert.equal(errorOf(text(`      ca: ${caFile}\n      verify: false`)), 'gatehouse.yaml:6:11 upstreams.app.tls.ca: is never used with verify: false (remove one of them)');
});

test('a reload with a new CA file makes new connections that trust it; unchanged settings keep the pool', async (t) => {
  const { ca, caFile } = await setUp(t);
  const backend = await httpsBackend(t, ca, ['127.0.0.1']);
  const config: ConfigInput = { listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, ...simpleProxyConfig([backend.url], { tls: { ca: caFile }, retries: { attempts: 1 } }) };
  const proxy = await startProxy(t, config);
  assert.equal((await request(proxy.url)).status, 200);
  const listen = proxy.gatehouse.config.listen;
  await proxy.gatehouse.reload(configFromObject({ ...config, listen }));
  assert.equal((await request(proxy.url)).status, 200);
  assert.equal(new Set(backend.requests.map((r) => r.socket)).size, 1, 'the same connection after a reload that changed nothing');
  // The file now names another CA: the next connection refuses the server.
  await writeFile(caFile, (await createCa('Replacement')).cert);
  await proxy.gatehouse.reload(configFromObject({ ...config, listen }));
  assert.equal((await request(proxy.url)).status, 502);
});

test('a server URL written HTTPS:// (the scheme in capitals) is TLS too: its tls block applies', async (t) => {
  const { ca, caFile } = await setUp(t);
  const backend = await httpsBackend(t, ca, ['api.internal']);
  const proxy = await startProxy(t, simpleProxyConfig([`HTTPS://127.0.0.1:${backend.port}`], { tls: { ca: caFile, servername: 'api.internal' } }));
  const res = await request(proxy.url, { headers: { host: 'public.example' } });
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).sni, 'api.internal');
});
