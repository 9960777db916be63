/** TLS termination: certificates by SNI (exact, wildcard, default), ECDSA and RSA side by side, reloads of the files. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

interface Handshake {
  readonly names: string;
  readonly keyType: string | undefined;
  readonly protocol: string | null;
  readonly serial: string;
}

/** Opens a TLS connection and reports the certificate the server chose. */
async function handshake(port: number, ca: string, servername: string | undefined, extra: { sigalgs?: string; maxVersion?: 'TLSv1.2' } = {}): Promise<Handshake> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, ...(servername === undefined ? {} : { servername }), checkServerIdentity: () => undefined, ...extra });
  await once(socket, 'secureConnect');
  const peer = socket.getPeerX509Certificate() as X509Certificate;
  const result = { names: peer.subjectAltName ?? '', keyType: peer.publicKey.asymmetricKeyType, protocol: socket.getProtocol(), serial: peer.serialNumber };
  socket.destroy();
  return result;
}

function tlsConfig(backendUrl: string, certificates: { cert: string; key: string }[]): ConfigInput {
  return { ...simpleProxyConfig([backendUrl]), listen: [{ address: '127.0.0.1:0', tls: { certificates } }] } as ConfigInput;
}

async function setUp(t: TestContext) {
  const ca = await createCa();
  const dir = await tempDir(t);
  const backend = await startBackend(t, echo());
  return { ca, dir, backend };
}

test('TLS: the certificate is chosen by SNI, exact then wildcard, else the first one; TLS 1.3 and 1.2 only', async (t) => {
  const { ca, dir, backend } = await setUp(t);
  const main = await writePair(dir, 'main', await ca.issue({ names: ['www.example.test', 'example.test'] }));
  const wild = await writePair(dir, 'wild', await ca.issue({ names: ['*.apps.example.test'] }));
  const api = await writePair(dir, 'api', await ca.issue({ names: ['api.apps.example.test'] }));
  const proxy = await startProxy(t, tlsConfig(backend.url, [main, wild, api]));
  assert.match((await handshake(proxy.port, ca.cert, 'example.test')).names, /DNS:www\.example\.test/);
  assert.match((await handshake(proxy.port, ca.cert, 'API.apps.example.test')).names, /^DNS:api\.apps\.example\.test$/, 'exact beats wildcard, case-insensitively');
  assert.match((await handshake(proxy.port, ca.cert, 'shop.apps.example.test')).names, /^DNS:\*\.apps\.example\.test$/);
  assert.match((await handshake(proxy.port, ca.cert, 'a.shop.apps.example.test')).names, /www\.example\.test/, 'a wildcard covers one label only');
  assert.match((await handshake(proxy.port, ca.cert, 'unknown.test')).names, /www\.example\.test/, 'unknown names get the default');
  assert.match((await handshake(proxy.port, ca.cert, undefined)).names, /www\.example\.test/, 'so do clients without SNI');
  assert.equal((await handshake(proxy.port, ca.cert, 'example.test')).protocol, 'TLSv1.3');
  assert.equal((await handshake(proxy.port, ca.cert, 'example.test', { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
  const old = connect({ host: '127.0.0.1', port: proxy.port, ca: ca.cert, servername: 'example.test', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
  const [error] = (await once(old, 'error')) as [Error];
  assert.match(String(error), /version|protocol|alert/i, 'TLS 1.1 is refused');
});

test('TLS: ECDSA and RSA certificates for the same names, each client gets one it supports', async (t) => {
  const { ca, dir, backend } = await setUp(t);
  const ec = await writePair(dir, 'ec', await ca.issue({ names: ['site.test'], keyType: 'ec' }));
  const rsa = await writePair(dir, 'rsa', await ca.issue({ names: ['site.test'], keyType: 'rsa' }));
  const proxy = await startProxy(t, tlsConfig(backend.url, [ec, rsa]));
  assert.equal((await handshake(proxy.port, ca.cert, 'site.test')).keyType, 'ec', 'ECDSA when the client takes both');
  const rsaOnly = await handshake(proxy.port, ca.cert, 'site.test', { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256', maxVersion: 'TLSv1.2' });
  assert.equal(rsaOnly.keyType, 'rsa');
  const rsaOnly13 = await handshake(proxy.port, ca.cert, 'site.test', { sigalgs: 'rsa_pss_rsae_sha256' });
  assert.equal(rsaOnly13.keyType, 'rsa', 'an RSA-only TLS 1.3 client with SNI gets the RSA certificate (read from its ClientHello)');
  assert.equal(rsaOnly13.protocol, 'TLSv1.3');
  assert.equal((await handshake(proxy.port, ca.cert, undefined, { sigalgs: 'rsa_pss_rsae_sha256' })).keyType, 'rsa', 'the default context holds both');
});

test('TLS: a changed certificate file serves new handshakes; a broken one is refused and the old keeps serving; open connections stay', async (t) => {
  const { ca, dir, backend } = await setUp(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const proxy = await startProxy(t, tlsConfig(backend.url, [pair]));
  const first = await handshake(proxy.port, ca.cert, 'site.test');
  const open = connect({ host: '127.0.0.1', port: proxy.port, ca: ca.cert, servername: 'site.test' });
  await once(open, 'secureConnect');

  const renewed = await writePair(dir, 'renewed', await ca.issue({ names: ['site.test'] }));
  await copyFile(renewed.key, pair.key);
  await copyFile(renewed.cert, pair.cert);
  let now = first;
  await waitFor(async () => (now = await handshake(proxy.port, ca.cert, 'site.test')).serial !== first.serial, 8000, 'the renewed certificate');
  assert.equal(now.serial, new X509Certificate(renewed.cert.endsWith('.pem') ? await import('node:fs/promises').then((fs) => fs.readFile(renewed.cert, 'utf8')) : '').serialNumber);
  assert.equal(open.destroyed, false, 'the open connection was not touched');
  open.destroy();

  await writeFile(pair.cert, 'not a certificate\n');
  await new Promise((resolve) => setTimeout(resolve, 2500));
  assert.equal((await handshake(proxy.port, ca.cert, 'site.test')).serial, now.serial, 'the broken file is refused');

  // A reload naming a broken file is rejected whole, naming the listener and the file.
  const broken = join(dir, 'broken.pem');
  await writeFile(broken, 'garbage');
  const config = configFromObject(tlsConfig(backend.url, [{ cert: broken, key: pair.key }]));
  await assert.rejects(proxy.gatehouse.reload(config), new RegExp(`listen\\[0\\]\\.tls: ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a PEM certificate file`));
  assert.equal((await handshake(proxy.port, ca.cert, 'site.test')).serial, now.serial);
});

test('TLS: a key that does not belong to its certificate is refused at start with the file named', async (t) => {
  const { ca, dir, backend } = await setUp(t);
  const a = await writePair(dir, 'a', await ca.issue({ names: ['a.test'] }));
  const b = await writePair(dir, 'b', await ca.issue({ names: ['b.test'] }));
  await assert.rejects(startProxy(t, tlsConfig(backend.url, [{ cert: a.cert, key: b.key }])), /b\.key: this key does not belong to the certificate/);
});

test('TLS behind a PROXY header sent in the same packet as the ClientHello: the handshake completes, the client is the one the header names', async (t) => {
  const { ca, dir, backend } = await setUp(t);
  // Two key types for one name: the ClientHello is read too, after the PROXY header.
  const ec = await writePair(dir, 'ec', await ca.issue({ names: ['site.test'], keyType: 'ec' }));
  const rsa = await writePair(dir, 'rsa', await ca.issue({ names: ['site.test'], keyType: 'rsa' }));
  const proxy = await startProxy(t, {
    ...simpleProxyConfig([backend.url]),
    listen: [{ address: '127.0.0.1:0', proxy_protocol: true, tls: { certificates: [ec, rsa] } }],
    trusted_proxies: ['127.0.0.10'],
  } as ConfigInput);
  const raw = netConnect({ host: '127.0.0.1', port: proxy.port, localAddress: '127.0.0.10' });
  t.after(() => raw.destroy());
  await once(raw, 'connect');
  let header: Buffer | null = Buffer.from(`PROXY TCP4 203.0.113.7 127.0.0.1 4000 ${proxy.port}\r\n`);
  // The TLS client writes through this stream; its first write goes out joined to the PROXY line.
  const carrier = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      raw.write(header === null ? chunk : Buffer.concat([header, chunk]), callback);
      header = null;
    },
    read() {},
  });
  raw.on('data', (chunk: Buffer) => carrier.push(chunk));
  raw.on('end', () => carrier.push(null));
  const secure = connect({ socket: carrier, ca: ca.cert, servername: 'site.test' });
  await once(secure, 'secureConnect');
  assert.equal(secure.getPeerX509Certificate()?.publicKey.asymmetricKeyType, 'ec');
  // write, not end: a half-close arriving before the answer lets the server close without one.
  secure.write('GET /who HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
  let answer = '';
  for await (const chunk of secure) answer += String(chunk);
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.equal((JSON.parse(answer.slice(answer.indexOf('{'))) as { headers: Record<string, string> }).headers['x-forwarded-for'], '203.0.113.7');
});
