/** readClientHello: whether a ClientHello takes ECDSA, from real ClientHellos of node:tls and hand-made TLS 1.2 ones. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect, type ConnectionOptions } from 'node:tls';
import { readClientHello } from '../../src/listeners/tls/client-hello.ts';

/** The first record a node:tls client sends with these options. */
async function clientHelloOf(options: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'site.test', ...options });
  client.on('error', () => {});
  const [socket] = (await accepted) as [import('node:net').Socket];
  let received = Buffer.alloc(0);
  while (received.length < 5 || received.length < 5 + received.readUInt16BE(3)) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    received = Buffer.concat([received, chunk]);
  }
  client.destroy();
  socket.destroy();
  server.close();
  return received;
}

/** A TLS 1.2 ClientHello with these cipher suites, and no extensions or only signature_algorithms with these schemes. */
function helloWithSuites(suites: number[], sigalgs?: number[]): Buffer {
  const extensions = sigalgs === undefined ? Buffer.alloc(0) : Buffer.alloc(2 + 4 + 2 + sigalgs.length * 2);
  if (sigalgs !== undefined) {
    extensions.writeUInt16BE(extensions.length - 2, 0);
    extensions.writeUInt16BE(13, 2);
    extensions.writeUInt16BE(2 + sigalgs.length * 2, 4);
    extensions.writeUInt16BE(sigalgs.length * 2, 6);
    sigalgs.forEach((scheme, i) => extensions.writeUInt16BE(scheme, 8 + i * 2));
  }
  const body = Buffer.alloc(2 + 32 + 1 + 2 + suites.length * 2 + 2 + extensions.length);
  let at = 0;
  body.writeUInt16BE(0x0303, at);
  at += 2 + 32; // legacy_version, random
  body[at++] = 0; // no session id
  body.writeUInt16BE(suites.length * 2, at);
  at += 2;
  for (const suite of suites) {
    body.writeUInt16BE(suite, at);
    at += 2;
  }
  body[at++] = 1; // one compression method: null
  body[at++] = 0;
  extensions.copy(body, at);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1, handshake.length >> 8, handshake.length & 0xff]), handshake]);
}

test('a ClientHello that offers ECDSA signatures says so; an RSA-only one does not', async () => {
  assert.deepEqual(readClientHello(await clientHelloOf({})), { ecdsa: true });
  assert.deepEqual(readClientHello(await clientHelloOf({ sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' })), { ecdsa: false });
  assert.deepEqual(readClientHello(await clientHelloOf({ sigalgs: 'ecdsa_secp384r1_sha384' })), { ecdsa: true });
});

test('a record not yet whole asks for more bytes; what is not a ClientHello counts as ECDSA (the default)', async () => {
  const hello = await clientHelloOf({ sigalgs: 'rsa_pss_rsae_sha256' });
  assert.equal(readClientHello(hello.subarray(0, 3)), undefined);
  assert.equal(readClientHello(hello.subarray(0, hello.length - 1)), undefined);
  assert.equal(readClientHello(Buffer.alloc(0)), undefined);
  assert.deepEqual(readClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { ecdsa: true });
  assert.deepEqual(readClientHello(Buffer.from('G')), { ecdsa: true });
  const tooLong = Buffer.from(hello);
  tooLong.writeUInt16BE(16_385, 3);
  assert.deepEqual(readClientHello(tooLong), { ecdsa: true });
  // A record cut short inside the hello: its fields run past the record.
  const cut = Buffer.from(hello.subarray(0, 50));
  cut.writeUInt16BE(45, 3);
  assert.deepEqual(readClientHello(cut), { ecdsa: true });
});

test('without signature_algorithms (TLS 1.2, RFC 5246 §7.4.1.4.1) only an ECDHE_ECDSA suite says ECDSA', () => {
  assert.deepEqual(readClientHello(helloWithSuites([0xc02f, 0x009c])), { ecdsa: false });
  assert.deepEqual(readClientHello(helloWithSuites([0xc02f, 0xc02b])), { ecdsa: true });
  assert.deepEqual(readClientHello(helloWithSuites([0xc009])), { ecdsa: true });
});

test('signature_algorithms, when sent, decides over the suites', () => {
  assert.deepEqual(readClientHello(helloWithSuites([0xc02b], [0x0804, 0x0401])), { ecdsa: false }, 'RSA schemes only');
  assert.deepEqual(readClientHello(helloWithSuites([0xc02f], [0x0804, 0x0503])), { ecdsa: true }, 'ecdsa_secp384r1_sha384');
});
