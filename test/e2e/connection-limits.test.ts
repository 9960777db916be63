/**
 * Connection limits at accept: per client (across listeners) and per listener; and a slowloris
 * attack (many connections, each sending its head a byte at a time) neither starves other
 * clients nor outlives header_timeout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, rawFrom, requestFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { protectionCounters, proxyToEcho } from '../helpers/proxy.ts';

const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

test('max_connections_per_client: the next connection is closed at accept; a closed one frees its slot; other clients are not affected', async (t) => {
  const { backend, proxy } = await proxyToEcho(t, undefined, {
    listen: [{ address: '127.0.0.1:0' }, { address: '127.0.0.20:0' }],
    protection: { max_connections_per_client: 2 },
  });
  const second = proxy.gatehouse.addresses[1]?.port ?? 0;
  const a = await Connection.open(t, proxy.port, '127.0.0.2');
  const b = await Connection.open(t, second, '127.0.0.2', '127.0.0.20');
  assert.equal((await a.get('/')).status, 200);
  assert.equal((await b.get('/')).status, 200);
  assert.equal(await rawFrom('127.0.0.2', proxy.port, GET), '', 'a third, on either listener, is refused');
  assert.equal(await rawFrom('127.0.0.2', second, GET, 3000, '127.0.0.20'), '');
  assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/`)).status, 200);
  a.socket.destroy();
  await waitFor(async () => /^HTTP\/1\.1 200 /.test(await rawFrom('127.0.0.2', proxy.port, GET)), 3000, 'the slot to be free');
  // (The wait above may have been refused once more before the close was seen.)
  assert.ok((protectionCounters(proxy).client_connection_limit ?? 0) >= 2);
  assert.equal(backend.requests.length, 4, 'the refused connections sent nothing on');
});

test('a listener\'s max_connections: connections past it are closed at once, and counted', async (t) => {
  const { backend, proxy } = await proxyToEcho(t, undefined, { listen: [{ address: '127.0.0.1:0', max_connections: 3 }] });
  const open: Connection[] = [];
  for (let i = 0; i < 3; i++) {
    const conn = await Connection.open(t, proxy.port, `127.0.0.${2 + i}`);
    assert.equal((await conn.get('/')).status, 200);
    open.push(conn);
  }
  assert.equal(await rawFrom('127.0.0.9', proxy.port, GET), '');
  assert.equal(protectionCounters(proxy).listener_connection_limit, 1);
  open[0]?.socket.destroy();
  await waitFor(async () => /^HTTP\/1\.1 200 /.test(await rawFrom('127.0.0.9', proxy.port, GET)), 3000, 'room on the listener');
  assert.equal(backend.requests.length, 4, 'the refused connection sent nothing on');
});

test('slowloris: one client\'s trickling connections are capped and cut; another client keeps its latency', async (t) => {
  const { backend, proxy } = await proxyToEcho(t, undefined, {
    limits: { header_timeout: 600 },
    protection: { max_connections_per_client: 10 },
  });
  const latency = async (): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const started = performance.now();
      assert.equal((await requestFrom('127.0.0.3', `${proxy.url}/`)).status, 200);
      times.push(performance.now() - started);
    }
    return times.sort((x, y) => x - y)[7] as number;
  };
  const idle = await latency();
  // 40 connections from one address, each sending its head one byte every 50 ms.
  const attackers: Connection[] = [];
  for (let i = 0; i < 40; i++) attackers.push(await Connection.open(t, proxy.port, '127.0.0.2'));
  const head = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
  let sent = 0;
  const trickle = setInterval(() => {
    for (const conn of attackers) if (!conn.isClosed) conn.write(head[sent % head.length] as string);
    sent++;
  }, 50);
  t.after(() => clearInterval(trickle));
  await waitFor(() => attackers.filter((c) => c.isClosed).length >= 30, 3000, 'connections over the cap to be refused');
  const underAttack = await latency();
  const started = performance.now();
  await waitFor(() => attackers.every((c) => c.isClosed), 3000, 'the trickling connections to be cut');
  clearInterval(trickle);
  assert.ok(performance.now() - started < 1500, 'cut by header_timeout');
  assert.ok(underAttack <= Math.max(2 * idle, idle + 2), `median latency ${underAttack.toFixed(2)} ms under attack vs ${idle.toFixed(2)} ms idle`);
  assert.equal(protectionCounters(proxy).client_connection_limit, 30);
  assert.equal(backend.requests.length, 30, 'only the good client reached the backend');
});
