/** OCSP stapling: responses fetched from a real responder (openssl ocsp), cached, stapled; a responder that is down never fails a handshake. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { connect, createServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { BasicOCSPResponse, OCSPResponse, OCSPResponseStatus } from '@peculiar/asn1-ocsp';
import { AsnConvert } from '@peculiar/asn1-schema';
import type { ConfigInput } from '../../src/config/schema.ts';
import { OcspStapler } from '../../src/listeners/tls/ocsp-stapler.ts';
import { loadCertificate } from '../../src/listeners/tls/certificate.ts';
import { closedPort, echo, startBackend, startRawBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair, type CertPem, type TestCa } from '../helpers/certs.ts';
import { waitFor } from '../helpers/http.ts';
import { ocspResponder } from '../helpers/ocsp-responder.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

/** Handshakes asking for a staple; returns the staple (null without one) and the served certificate. */
async function handshake(port: number, ca: string, options: ConnectionOptions = {}): Promise<{ staple: Buffer | null; cert: X509Certificate }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername: 'site.test', requestOCSP: true, ...options });
  let staple: Buffer | null = null;
  socket.on('OCSPResponse', (response: Buffer | null) => (staple = response));
  await once(socket, 'secureConnect');
  const cert = socket.getPeerX509Certificate() as X509Certificate;
  socket.destroy();
  return { staple, cert };
}

/** The stapled response's status for `cert`, read independently of Gatehouse's own parser. */
function statusIn(staple: Buffer, cert: X509Certificate): string {
  const response = AsnConvert.parse(staple, OCSPResponse);
  assert.equal(response.responseStatus, OCSPResponseStatus.successful);
  const basic = AsnConvert.parse(response.responseBytes?.response.buffer ?? new ArrayBuffer(0), BasicOCSPResponse);
  const single = basic.tbsResponseData.responses.find((r) => Buffer.from(r.certID.serialNumber).toString('hex').toUpperCase() === cert.serialNumber.toUpperCase());
  assert.ok(single, 'the response is about the served certificate');
  return single.certStatus.good !== undefined ? 'good' : single.certStatus.revoked !== undefined ? 'revoked' : 'unknown';
}

/** A leaf for site.test naming `ocspUrl`, written with its issuer as the chain (as certificate files usually are). */
async function chainPair(dir: string, ca: TestCa, ocspUrl: string, keyType: 'ec' | 'rsa' = 'ec'): Promise<{ pem: CertPem; files: { cert: string; key: string } }> {
  const pem = await ca.issue({ names: ['site.test'], ocspUrl, keyType });
  const files = await writePair(dir, `site-${keyType}`, pem);
  await writeFile(files.cert, pem.cert + ca.cert);
  return { pem, files };
}

async function proxyWith(t: TestContext, ...files: { cert: string; key: string }[]) {
  const backend = await startBackend(t, echo());
  return startProxy(t, { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', tls: { certificates: files } }] } as ConfigInput);
}

test('OCSP: the responder named by the certificate is asked, and its good response is stapled', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const responder = await ocspResponder(t, ca);
  const { pem, files } = await chainPair(dir, ca, responder.url);
  await responder.start([pem.cert]);
  const proxy = await proxyWith(t, files);
  let last: { staple: Buffer | null; cert: X509Certificate } | undefined;
  await waitFor(async () => (last = await handshake(proxy.port, ca.cert)).staple !== null, 10_000, 'a stapled response');
  assert.ok(last?.staple);
  assert.equal(statusIn(last.staple, last.cert), 'good');
  // Cached: the responder going away changes nothing for handshakes.
  await responder.stop();
  const again = await handshake(proxy.port, ca.cert);
  assert.ok(again.staple);
  assert.equal(statusIn(again.staple, again.cert), 'good');
});

test('OCSP: with ECDSA and RSA certificates for one name, a staple is always about the certificate served', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const responder = await ocspResponder(t, ca);
  const ec = await chainPair(dir, ca, responder.url, 'ec');
  const rsa = await chainPair(dir, ca, responder.url, 'rsa');
  await responder.start([ec.pem.cert, rsa.pem.cert]);
  const proxy = await proxyWith(t, ec.files, rsa.files);
  const rsaOnly = { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256', maxVersion: 'TLSv1.2' } as const;
  // By SNI, each key type has a context of its own: both are stapled.
  await waitFor(async () => (await handshake(proxy.port, ca.cert)).staple !== null && (await handshake(proxy.port, ca.cert, rsaOnly)).staple !== null, 10_000, 'both staples');
  for (const options of [{}, rsaOnly]) {
    const { staple, cert } = await handshake(proxy.port, ca.cert, options);
    assert.ok(staple);
    assert.equal(statusIn(staple, cert), 'good');
  }
  // Without SNI the default context holds both, and node:tls cannot say which one it will serve: no staple rather than a wrong one.
  for (const options of [{}, rsaOnly]) {
    const { staple } = await handshake(proxy.port, ca.cert, { ...options, servername: '', checkServerIdentity: () => undefined });
    assert.equal(staple, null);
  }
});

test('OCSP: a responder that is down never fails a handshake; it goes without a staple', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const { files } = await chainPair(dir, ca, `http://127.0.0.1:${await closedPort()}/`);
  const proxy = await proxyWith(t, files);
  for (let i = 0; i < 3; i++) {
    const { staple } = await handshake(proxy.port, ca.cert);
    assert.equal(staple, null);
  }
  const req = httpsGet({ host: '127.0.0.1', port: proxy.port, ca: ca.cert, servername: 'site.test', headers: { host: 'site.test' }, agent: false });
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  assert.equal(res.statusCode, 200, 'requests are served');

  // A responder that accepts and never answers holds up no handshake either.
  const hanging = await startRawBackend(t, () => {});
  const slow = await chainPair(await tempDir(t), ca, hanging.url);
  const slowProxy = await proxyWith(t, slow.files);
  await waitFor(() => hanging.sockets.length > 0, 5000, 'the fetch to start');
  const started = Date.now();
  assert.equal((await handshake(slowProxy.port, ca.cert)).staple, null);
  assert.ok(Date.now() - started < 1000, 'the handshake did not wait for the responder');
});

test('OCSP stapler: a failed refresh keeps the last good response; a responder back up is asked again; revocation is fetched but reported', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const responder = await ocspResponder(t, ca);
  const { pem, files } = await chainPair(dir, ca, responder.url);
  const logs: string[] = [];
  const stapler = new OcspStapler((_level, _fields, message) => logs.push(message), { retryMin: 50, retryMax: 100, refreshMin: 50, refreshMax: 100 });
  t.after(() => stapler.close());
  const server = createServer({ cert: readFileSync(files.cert, 'utf8'), key: pem.key });
  stapler.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const leaf = new X509Certificate(pem.cert);

  assert.equal(server.listenerCount('OCSPRequest'), 0, 'no certificate names a responder yet: handshakes are not asked about staples');
  // Down at first: no staple, retries go on.
  stapler.track([loadCertificate(files)]);
  assert.equal(server.listenerCount('OCSPRequest'), 1);
  await waitFor(() => logs.filter((m) => m.includes('without a staple')).length >= 2, 5000, 'failed tries');
  assert.equal((await handshake(port, ca.cert)).staple, null);

  // Up: the next retry fetches a response.
  await responder.start([pem.cert]);
  await waitFor(() => stapler.responseFor(leaf.raw) !== null, 5000, 'a response');
  // Down again: refreshes fail, the last good response keeps being stapled.
  await responder.stop();
  const failures = logs.length;
  await waitFor(() => logs.slice(failures).some((m) => m.includes('previous response keeps')), 5000, 'a failed refresh');
  const { staple, cert } = await handshake(port, ca.cert);
  assert.ok(staple);
  assert.equal(statusIn(staple, cert), 'good');

  // Revoked: the new answer replaces the old one (clients must learn it) and is logged.
  await responder.start([], [pem.cert]);
  await waitFor(() => stapler.responseFor(leaf.raw)?.status === 'revoked', 5000, 'the revocation');
  assert.ok(logs.some((m) => m.includes('revoked')));
  const revoked = await handshake(port, ca.cert);
  assert.ok(revoked.staple);
  assert.equal(statusIn(revoked.staple, revoked.cert), 'revoked');

  // No certificate left that names a responder: the server stops asking the stapler.
  stapler.track([]);
  assert.equal(server.listenerCount('OCSPRequest'), 0);
});
