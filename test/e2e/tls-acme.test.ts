/**
 * ACME against a real server (pebble): HTTP-01 answered on the plain listener, the certificate
 * served by SNI, stored owner-only and reused on restart, and a failing name that leaves the
 * others alone. Skipped only when pebble is not installed.
 */
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { acmeDirFor } from '../../src/listeners/tls/acme/acme-account.ts';
import { CertificateSources } from '../../src/listeners/tls/certificate-sources.ts';
import { Primary } from '../../src/workers/primary.ts';
import { allocateSharedMemory, CHALLENGE_HANDOUT_TIMEOUT_MS, sharedAcme } from '../../src/workers/shared.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { waitFor } from '../helpers/http.ts';
import { collectingLogger } from '../helpers/logs.ts';
import { startPebble, type Pebble } from '../helpers/pebble.ts';
import { simpleProxyConfig } from '../helpers/proxy.ts';

/** The log lines of one Gatehouse, as objects. */
type Lines = Record<string, unknown>[];

async function startGatehouse(t: TestContext, config: ConfigInput): Promise<{ gatehouse: Gatehouse; lines: Lines; tlsPort: number }> {
  const { logger, lines } = collectingLogger({ level: 'info' });
  const gatehouse = await Gatehouse.start(configFromObject(config), { logger });
  t.after(() => gatehouse.stop(500));
  return { gatehouse, lines, tlsPort: gatehouse.addresses[1]?.port ?? 0 };
}

async function acmeConfig(t: TestContext, pebble: Pebble, stateDir: string, names: string[]): Promise<ConfigInput> {
  const backend = await startBackend(t, echo());
  return {
    ...simpleProxyConfig([backend.url]),
    // The plain listener on pebble's HTTP-01 port answers the challenges.
    listen: [
      { address: `127.0.0.1:${pebble.httpPort}` },
      { address: '127.0.0.1:0', tls: { acme: { directory: pebble.directory, ca_file: pebble.caFile, email: 'ops@app.test', names } } },
    ],
    access_log: { enabled: false },
    state_dir: stateDir,
  } as ConfigInput;
}

/** The certificate served for `servername`, unverified. */
async function servedCertificate(port: number, servername: string): Promise<X509Certificate> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  const cert = socket.getPeerX509Certificate() as X509Certificate;
  socket.destroy();
  return cert;
}

/** GET / for `servername` trusting only `ca` (the whole chain is checked); the status. */
async function getTrusting(port: number, servername: string, ca: string): Promise<number> {
  const req = request({ host: '127.0.0.1', port, path: '/', servername, headers: { host: servername }, ca, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  return res.statusCode ?? 0;
}

async function waitForIssuer(port: number, servername: string, issuer: RegExp, pebble: Pebble): Promise<X509Certificate> {
  let cert: X509Certificate | undefined;
  await waitFor(async () => issuer.test((cert = await servedCertificate(port, servername)).issuer), 30_000, `a certificate from ${issuer} for ${servername}\n${pebble.output()}`);
  return cert as X509Certificate;
}

const DAY = 86_400_000;
const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const messages = (lines: Lines): string[] => lines.map((l) => String(l.msg));

test('acme: pebble issues a certificate (HTTP-01 on the plain listener); it is served, stored owner-only and reused on restart without an order', async (t) => {
  const pebble = await startPebble(t);
  if (pebble === undefined) return;
  const stateDir = join(await tempDir(t), 'state');
  const config = await acmeConfig(t, pebble, stateDir, ['app.test']);

  const first = await startGatehouse(t, config);
  // Bound and serving at once, with a local fallback until the order completes.
  const fallback = await servedCertificate(first.tlsPort, 'app.test');
  assert.match(fallback.issuer, /Gatehouse Local CA/);
  const issued = await waitForIssuer(first.tlsPort, 'app.test', /Pebble/, pebble);
  assert.ok(issued.checkHost('app.test'));
  const root = await pebble.root();
  assert.equal(await getTrusting(first.tlsPort, 'app.test', root), 200, 'a client trusting pebble\'s root verifies the chain');

  const acmeDir = join(stateDir, 'acme', (await readdir(join(stateDir, 'acme')))[0] as string);
  assert.match(acmeDir, /127\.0\.0\.1-\d+-dir$/);
  assert.equal(await mode(join(acmeDir, 'account.key')), 0o600, 'the account key');
  assert.equal(await mode(join(acmeDir, 'certificates')), 0o700);
  assert.equal(await mode(join(acmeDir, 'certificates', 'app.test.key')), 0o600, 'the certificate key');
  assert.equal(await mode(join(acmeDir, 'certificates', 'app.test.pem')), 0o600);

  // A reload keeps the certificate and its manager: nothing is ordered again.
  await first.gatehouse.reload(configFromObject(config));
  assert.equal((await servedCertificate(first.tlsPort, 'app.test')).serialNumber, issued.serialNumber);
  assert.equal(messages(first.lines).filter((m) => m === 'ordering an ACME certificate').length, 1, 'one order in all');
  await first.gatehouse.stop(500);

  const second = await startGatehouse(t, config);
  const reused = await servedCertificate(second.tlsPort, 'app.test');
  assert.equal(reused.serialNumber, issued.serialNumber, 'the stored certificate is served from the start');
  assert.ok(messages(second.lines).includes('ACME certificate loaded from the state directory'));
  assert.ok(!messages(second.lines).includes('ordering an ACME certificate'), 'no new order');
});

test('acme: a name whose order fails gets a local fallback and never stops the listener serving the other names', async (t) => {
  const pebble = await startPebble(t);
  if (pebble === undefined) return;
  // Nothing listens on 127.0.0.2: pebble's validation of this name fails.
  await pebble.resolve('fail.test', '127.0.0.2');
  const stateDir = join(await tempDir(t), 'state');
  const { lines, tlsPort } = await startGatehouse(t, await acmeConfig(t, pebble, stateDir, ['fail.test', 'app.test']));

  await waitFor(() => lines.some((l) => l.msg === 'ACME order failed' && l.name === 'fail.test'), 30_000, `the order of fail.test to fail\n${pebble.output()}`);
  const failure = lines.find((l) => l.msg === 'ACME order failed');
  assert.match(String(failure?.error), /127\.0\.0\.2.*refused/, 'the reason is pebble\'s: it could not reach the name');
  assert.equal(failure?.failures, 1);
  assert.equal(failure?.retry_in_s, 60, 'tried again after a backoff');
  await waitForIssuer(tlsPort, 'app.test', /Pebble/, pebble);
  assert.equal(await getTrusting(tlsPort, 'app.test', await pebble.root()), 200);
  assert.match((await servedCertificate(tlsPort, 'fail.test')).issuer, /Gatehouse Local CA/, 'the failed name keeps its fallback');
});

test('acme: a stored certificate due for renewal serves until the renewed one arrives', async (t) => {
  const pebble = await startPebble(t);
  if (pebble === undefined) return;
  const stateDir = join(await tempDir(t), 'state');
  // Two thirds of its life gone: due for renewal, still valid.
  const ca = await createCa('Old Issuer');
  const old = await ca.issue({ names: ['app.test'], notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() + DAY / 2) });
  const certificates = join(acmeDirFor(stateDir, pebble.directory), 'certificates');
  await mkdir(certificates, { recursive: true });
  await writePair(certificates, 'app.test', old);

  const { tlsPort, lines } = await startGatehouse(t, await acmeConfig(t, pebble, stateDir, ['app.test']));
  assert.match((await servedCertificate(tlsPort, 'app.test')).issuer, /Old Issuer|Pebble/, 'the stored certificate serves from the start, not a fallback');
  await waitForIssuer(tlsPort, 'app.test', /Pebble/, pebble);
  assert.ok(messages(lines).includes('ACME certificate loaded from the state directory'));
});

test('acme: an unreadable ca_file stops the start with the listener and the file named', async (t) => {
  const dir = await tempDir(t);
  const config = configFromObject({
    listen: [
      { address: '127.0.0.1:0' },
      { address: '127.0.0.1:0', tls: { acme: { directory: 'https://127.0.0.1:9/dir', ca_file: join(dir, 'missing.pem'), names: ['app.test'] } } },
    ],
    access_log: { enabled: false },
    state_dir: join(dir, 'state'),
  });
  await assert.rejects(Gatehouse.start(config, { logger: pino({ level: 'silent' }) }), (error: Error) => {
    assert.match(error.message, /^listen\[1\]\.tls: acme\.ca_file: cannot read .*missing\.pem \(ENOENT/);
    return true;
  });
});

test('acme: a reload refused for an unreadable ca_file works once the file is there (the failed start is not kept)', async (t) => {
  const pebble = await startPebble(t);
  if (pebble === undefined) return;
  const dir = await tempDir(t);
  const caFile = join(dir, 'pebble-ca.pem');
  const withAcme = await acmeConfig(t, pebble, join(dir, 'state'), ['app.test']);
  const [plain, acmeListener] = withAcme.listen as [object, { tls: { acme: object } }];
  const acme = { ...withAcme, listen: [plain, { ...acmeListener, tls: { acme: { ...acmeListener.tls.acme, ca_file: caFile } } }] } as ConfigInput;
  const { gatehouse, tlsPort } = await startGatehouse(t, { ...withAcme, listen: [plain, { address: '127.0.0.1:0', tls: { internal: { names: ['app.test'] } } }] } as ConfigInput);
  await assert.rejects(gatehouse.reload(configFromObject(acme)), /acme\.ca_file: cannot read .*pebble-ca\.pem \(ENOENT/);
  await writeFile(caFile, await readFile(pebble.caFile));
  await gatehouse.reload(configFromObject(acme));
  await waitForIssuer(tlsPort, 'app.test', /Pebble/, pebble);
});

test('acme with workers: one worker orders, every worker answers the challenge and serves the certificate it stored', async (t) => {
  const pebble = await startPebble(t);
  if (pebble === undefined) return;
  const stateDir = join(await tempDir(t), 'state');
  const config = await acmeConfig(t, pebble, stateDir, ['app.test']);
  const primary = await Primary.start(configFromObject({ ...config, workers: 2 } as ConfigInput), { logger: pino({ level: 'silent' }), workers: 2 });
  t.after(() => primary.stop(500));
  const tlsPort = primary.addresses[1]?.port ?? 0;

  // The CA's validation request reaches whichever worker the kernel picks; the order succeeds either way.
  await waitForIssuer(tlsPort, 'app.test', /Pebble/, pebble);
  // Connections spread over both workers: each serves the one certificate ordered (two orders would show two serials).
  let serials = new Set<string>();
  await waitFor(
    async () => {
      const certs = await Promise.all(Array.from({ length: 20 }, () => servedCertificate(tlsPort, 'app.test')));
      serials = new Set(certs.map((cert) => `${/Pebble/.test(cert.issuer) ? 'pebble' : 'other'}:${cert.serialNumber}`));
      return serials.size === 1;
    },
    15_000,
    'every worker serving the same certificate',
  );
  assert.match([...serials][0] as string, /^pebble:/);
  const stored = await readdir(join(acmeDirFor(stateDir, pebble.directory), 'certificates'));
  assert.deepEqual(stored.sort(), ['app.test.key', 'app.test.pem']);
});

test('acme with workers: a challenge opened on one worker is answered by the others, and closed on all', async () => {
  const memory = allocateSharedMemory(10, 2);
  const ordering = sharedAcme(memory, { runsChecks: true });
  const serving = sharedAcme(memory, { runsChecks: false });
  const log = (): void => {};
  const orderer = new CertificateSources(log, ordering);
  const other = new CertificateSources(log, serving);
  try {
    assert.equal(ordering.ordersHere, true);
    assert.equal(serving.ordersHere, false);
    // Opening waits for the other worker's word: the CA is told to validate only then.
    const started = Date.now();
    await orderer.challenges.add('token-1', 'token-1.thumbprint');
    assert.equal(other.challenges.answer('GET', '/.well-known/acme-challenge/token-1'), 'token-1.thumbprint', 'answered as soon as the opening resolved');
    assert.ok(Date.now() - started < CHALLENGE_HANDOUT_TIMEOUT_MS, 'resolved by the word, not the timeout');
    orderer.challenges.remove('token-1');
    await waitFor(() => other.challenges.pending === 0, 2_000, 'the challenge closed on the other worker');
  } finally {
    ordering.close();
    serving.close();
  }
});
