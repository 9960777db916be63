/** TLS session resumption: tickets on by default, off on demand, keys rotated, keys shareable between processes. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { connect, createServer, type ConnectionOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { DerivedTicketKeys, randomTicketSecret, SessionTickets } from '../../src/listeners/tls/session-tickets.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair, type CertPem, type TestCa } from '../helpers/certs.ts';
import { waitFor } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

interface Connected {
  readonly reused: boolean;
  /** The session to resume with next time (a TLS 1.3 ticket arrives after the handshake). */
  readonly session: Buffer | undefined;
}

/** A handshake, optionally resuming `session`; waits for the new ticket the server sends. */
async function handshake(port: number, ca: string, options: ConnectionOptions = {}): Promise<Connected> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername: 'site.test', ALPNProtocols: ['http/1.1'], ...options });
  let session: Buffer | undefined;
  socket.on('session', (s: Buffer) => (session = s));
  await once(socket, 'secureConnect');
  const reused = socket.isSessionReused();
  // TLS 1.3 tickets come after the handshake, TLS 1.2 ones within it; a resumed session may get none.
  if (!reused) await waitFor(() => session !== undefined, 2000, 'a session ticket');
  socket.destroy();
  return { reused, session };
}

async function tlsProxy(t: TestContext, tls: Record<string, unknown> = {}) {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, echo());
  const config = { ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair], ...tls } }] } as ConfigInput;
  const proxy = await startProxy(t, config);
  return { ca, proxy, config };
}

test('sessions: a client resumes with the ticket it was given (TLS 1.3 and 1.2, with and without SNI)', async (t) => {
  const { ca, proxy } = await tlsProxy(t);
  for (const options of [{}, { maxVersion: 'TLSv1.2' as const }, { servername: '', checkServerIdentity: () => undefined }]) {
    const first = await handshake(proxy.port, ca.cert, options);
    assert.equal(first.reused, false);
    assert.ok(first.session, `a ticket is issued (${JSON.stringify(options)})`);
    const second = await handshake(proxy.port, ca.cert, { ...options, session: first.session });
    assert.equal(second.reused, true, `the session is resumed (${JSON.stringify(options)})`);
  }
});

test('sessions: a reload (certificates swapped in) keeps tickets valid', async (t) => {
  const { ca, proxy, config } = await tlsProxy(t);
  const first = await handshake(proxy.port, ca.cert);
  await proxy.gatehouse.reload(configFromObject({ ...config, access_log: { enabled: false } }));
  assert.equal((await handshake(proxy.port, ca.cert, { session: first.session as Buffer })).reused, true);
});

test('sessions: session_tickets: false resumes nothing', async (t) => {
  const { ca, proxy } = await tlsProxy(t, { session_tickets: false });
  const first = await handshake(proxy.port, ca.cert);
  const second = await handshake(proxy.port, ca.cert, first.session === undefined ? {} : { session: first.session });
  assert.equal(second.reused, false);
});

/** A plain node:tls server with the ticket rotation of Gatehouse attached. */
async function ticketServer(t: TestContext, ca: TestCa, leaf: CertPem, tickets: SessionTickets): Promise<{ server: TlsServer; port: number }> {
  const server = createServer({ cert: leaf.cert, key: leaf.key, ticketKeys: tickets.currentKey(), sessionTimeout: tickets.lifetimeSeconds }, (s) => s.resume());
  tickets.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    tickets.close();
    server.close();
  });
  void ca;
  return { server, port: (server.address() as { port: number }).port };
}

test('sessions: keys rotate on schedule; tickets of the previous key stop resuming (one full handshake), new ones resume', async (t) => {
  const ca = await createCa();
  const leaf = await ca.issue({ names: ['site.test'] });
  const interval = 1000;
  // Start just after a boundary, so the first ticket is issued and resumed within one period.
  await new Promise((r) => setTimeout(r, interval - (Date.now() % interval) + 5));
  const tickets = new SessionTickets(new DerivedTicketKeys(randomTicketSecret()), interval);
  const { server, port } = await ticketServer(t, ca, leaf, tickets);
  const before = server.getTicketKeys();
  const first = await handshake(port, ca.cert);
  assert.equal((await handshake(port, ca.cert, { session: first.session as Buffer })).reused, true);
  await waitFor(() => !server.getTicketKeys().equals(before), 2000, 'the key to rotate');
  const afterRotation = await handshake(port, ca.cert, { session: first.session as Buffer });
  assert.equal(afterRotation.reused, false, 'the old ticket no longer resumes');
  assert.equal((await handshake(port, ca.cert, { session: afterRotation.session as Buffer })).reused, true, 'the new one does');
});

test('sessions: two servers deriving keys from one secret resume each other\'s sessions (the shape workers will use)', async (t) => {
  const ca = await createCa();
  const leaf = await ca.issue({ names: ['site.test'] });
  const secret = randomTicketSecret();
  const hour = 3_600_000;
  const a = await ticketServer(t, ca, leaf, new SessionTickets(new DerivedTicketKeys(secret), hour));
  const b = await ticketServer(t, ca, leaf, new SessionTickets(new DerivedTicketKeys(secret), hour));
  const c = await ticketServer(t, ca, leaf, new SessionTickets(new DerivedTicketKeys(randomTicketSecret()), hour));
  const first = await handshake(a.port, ca.cert);
  assert.equal((await handshake(b.port, ca.cert, { session: first.session as Buffer })).reused, true);
  assert.equal((await handshake(c.port, ca.cert, { session: first.session as Buffer })).reused, false, 'another secret, another key');
});
