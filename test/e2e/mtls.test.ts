/** Client certificates (mTLS): required or optional, verified against the listener's CA, the subject forwarded in a header only Gatehouse writes. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { test, type TestContext } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair, type CertPem } from '../helpers/certs.ts';
import { h2Request, h2Session } from '../helpers/h2.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';
import pino from 'pino';

interface Echoed {
  readonly headers: Record<string, string>;
  readonly rawHeaders: string[];
}

async function setUp(t: TestContext, clientAuth: { required?: boolean }) {
  const serverCa = await createCa('Server CA');
  const clientCa = await createCa('Client CA');
  const otherCa = await createCa('Other CA');
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await serverCa.issue({ names: ['site.test'] }));
  const caFile = join(dir, 'clients.pem');
  await writeFile(caFile, clientCa.cert);
  const backend = await startBackend(t, echo());
  const config = { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair], client_auth: { ca: caFile, ...clientAuth } } }] } as ConfigInput;
  const proxy = await startProxy(t, config);
  const alice = await clientCa.issue({ names: ['alice.clients.test'], client: true });
  const mallory = await otherCa.issue({ names: ['alice.clients.test'], client: true });
  return { serverCa, proxy, alice, mallory, backend, dir };
}

/** One HTTPS request presenting `client` (or no certificate); the echoed request, or the error. */
async function get(port: number, ca: string, client: CertPem | null, headers: Record<string, string> = {}): Promise<Echoed | Error> {
  const req = httpsRequest({ host: '127.0.0.1', port, ca, servername: 'site.test', agent: false, headers: { host: 'site.test', ...headers }, ...(client === null ? {} : { cert: client.cert, key: client.key }) });
  req.end();
  try {
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    assert.equal(res.statusCode, 200);
    return JSON.parse(Buffer.concat(chunks).toString()) as Echoed;
  } catch (error: unknown) {
    if (error instanceof Error && !(error instanceof assert.AssertionError)) return error;
    throw error;
  }
}

test('mTLS required: no certificate or one from another CA is refused in the handshake; a verified subject reaches the backend, a spoofed one never does', async (t) => {
  const { serverCa, proxy, alice, mallory, backend } = await setUp(t, { required: true });
  const none = await get(proxy.port, serverCa.cert, null);
  assert.ok(none instanceof Error, 'no certificate: refused');
  assert.match(String((none as NodeJS.ErrnoException).code ?? none.message), /CERTIFICATE_REQUIRED|ECONNRESET|EPIPE|alert/i);
  const wrong = await get(proxy.port, serverCa.cert, mallory);
  assert.ok(wrong instanceof Error, 'a certificate from another CA: refused');
  assert.equal(backend.requests.length, 0, 'nothing refused reached the backend');

  const ok = await get(proxy.port, serverCa.cert, alice, { 'x-client-cert-subject': 'CN=admin' });
  assert.ok(!(ok instanceof Error), String(ok));
  assert.equal(ok.headers['x-client-cert-subject'], 'CN=alice.clients.test');
  assert.equal(ok.rawHeaders.filter((h) => h.toLowerCase() === 'x-client-cert-subject').length, 1, 'the spoofed copy was dropped');
});

test('mTLS optional: clients without a (valid) certificate are served, without the header, and their own copy is dropped', async (t) => {
  const { serverCa, proxy, alice, mallory } = await setUp(t, { required: false });
  const none = await get(proxy.port, serverCa.cert, null, { 'X-Client-Cert-Subject': 'CN=admin' });
  assert.ok(!(none instanceof Error), String(none));
  assert.equal(none.headers['x-client-cert-subject'], undefined);
  const wrong = await get(proxy.port, serverCa.cert, mallory, { 'x-client-cert-subject': 'CN=admin' });
  assert.ok(!(wrong instanceof Error), String(wrong));
  assert.equal(wrong.headers['x-client-cert-subject'], undefined, 'an unverified certificate says nothing');
  const ok = await get(proxy.port, serverCa.cert, alice);
  assert.ok(!(ok instanceof Error), String(ok));
  assert.equal(ok.headers['x-client-cert-subject'], 'CN=alice.clients.test');
});

test('mTLS: a resumed session keeps its verified subject', async (t) => {
  const { serverCa, proxy, alice } = await setUp(t, { required: true });
  const options = { host: '127.0.0.1', port: proxy.port, ca: serverCa.cert, servername: 'site.test', cert: alice.cert, key: alice.key, ALPNProtocols: ['http/1.1'] };
  const ask = async (session?: Buffer): Promise<{ reused: boolean; subject: string | undefined; next: Buffer | undefined }> => {
    const socket = tlsConnect(session === undefined ? options : { ...options, session });
    let next: Buffer | undefined;
    socket.on('session', (s: Buffer) => (next = s));
    await once(socket, 'secureConnect');
    const reused = socket.isSessionReused();
    socket.write('GET / HTTP/1.1\r\nhost: site.test\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += (chunk as Buffer).toString();
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Echoed;
    return { reused, subject: body.headers['x-client-cert-subject'], next };
  };
  const first = await ask();
  assert.equal(first.subject, 'CN=alice.clients.test');
  assert.ok(first.next);
  const second = await ask(first.next);
  assert.equal(second.reused, true);
  assert.equal(second.subject, 'CN=alice.clients.test');
});

test('mTLS: a reload turns client certificates on and off for new connections', async (t) => {
  const serverCa = await createCa('Server CA');
  const clientCa = await createCa('Client CA');
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await serverCa.issue({ names: ['site.test'] }));
  const caFile = join(dir, 'clients.pem');
  await writeFile(caFile, clientCa.cert);
  const backend = await startBackend(t, echo());
  const base = { ...simpleProxyConfig([backend.url]), access_log: { enabled: false } };
  const plain = { ...base, listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] } }] } as ConfigInput;
  const proxy = await startProxy(t, plain);
  assert.ok(!((await get(proxy.port, serverCa.cert, null)) instanceof Error));
  const listen = [{ address: '127.0.0.1:0', tls: { certificates: [pair], client_auth: { ca: caFile } } }];
  await proxy.gatehouse.reload(configFromObject({ ...base, listen } as ConfigInput));
  assert.ok((await get(proxy.port, serverCa.cert, null)) instanceof Error, 'now required');
  const alice = await clientCa.issue({ names: ['alice.clients.test'], client: true });
  const ok = await get(proxy.port, serverCa.cert, alice);
  assert.ok(!(ok instanceof Error), String(ok));
  assert.equal(ok.headers['x-client-cert-subject'], 'CN=alice.clients.test');
  await proxy.gatehouse.reload(configFromObject({ ...base, listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] } }] } as ConfigInput));
  const after = await get(proxy.port, serverCa.cert, null);
  assert.ok(!(after instanceof Error), String(after));
});

test('mTLS over HTTP/2: the verified subject reaches the backend, a spoofed one is dropped', async (t) => {
  const { serverCa, proxy, alice } = await setUp(t, { required: true });
  const session = await h2Session(t, `https://127.0.0.1:${proxy.port}`, { ca: serverCa.cert, servername: 'site.test', cert: alice.cert, key: alice.key });
  for (let i = 0; i < 2; i++) {
    const res = await h2Request(session, { ':authority': 'site.test', 'x-client-cert-subject': 'CN=admin' });
    assert.equal(res.status, 200);
    const echoed = JSON.parse(res.body) as Echoed;
    assert.equal(echoed.headers['x-client-cert-subject'], 'CN=alice.clients.test');
  }
});

test('plain listeners drop an incoming X-Client-Cert-Subject too', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const res = await fetch(proxy.url, { headers: { 'x-client-cert-subject': 'CN=admin' } });
  const echoed = (await res.json()) as Echoed;
  assert.equal(echoed.headers['x-client-cert-subject'], undefined);
});

test('mTLS: a client CA file that cannot be read stops the start, naming the listener and the file', async (t) => {
  const dir = await tempDir(t);
  const ca = await createCa();
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const missing = join(dir, 'missing.pem');
  const notPem = join(dir, 'not.pem');
  await writeFile(notPem, 'hello');
  for (const [file, reason] of [[missing, /cannot read the client CA file/], [notPem, /no PEM certificate/]] as const) {
    const config = configFromObject({ ...simpleProxyConfig(['http://127.0.0.1:1']), access_log: { enabled: false }, listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair], client_auth: { ca: file } } }] } as ConfigInput);
    await assert.rejects(Gatehouse.start(config, { logger: pino({ level: 'silent' }) }), (error: Error) => {
      assert.match(error.message, /listen\[0\]\.tls\.client_auth/);
      assert.ok(error.message.includes(file));
      assert.match(error.message, reason);
      return true;
    });
  }
});
