import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort } from '../helpers/process.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

test('a reload keeps the connection pools of unchanged servers', async (t) => {
  const backend = await startBackend(t, echo());
  const ports = new Set<number>();
  backend.server.on('request', (req) => ports.add(req.socket.remotePort ?? 0));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  await request(`${proxy.url}/`);
  const listen = proxy.gatehouse.config.listen;
  await proxy.gatehouse.reload(
    configFromObject({
      listen,
      access_log: { enabled: false },
      upstreams: { app: { servers: [{ url: backend.url }] } },
      routes: [{ match: { path_prefix: '/new' }, respond: { status: 200, body: 'new route' } }, { match: {}, upstream: 'app' }],
    }),
  );
  assert.equal((await request(`${proxy.url}/new`)).body, 'new route');
  await request(`${proxy.url}/`);
  assert.equal(ports.size, 1, 'the same upstream connection served before and after the reload');
});

test('a reload binds added listeners and closes removed ones', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const second = await freePort();
  const base = { access_log: { enabled: false }, ...simpleProxyConfig([backend.url]) };
  await proxy.gatehouse.reload(configFromObject({ ...base, listen: [{ address: `127.0.0.1:${second}` }] }));
  assert.equal((await request(`http://127.0.0.1:${second}/`)).status, 200);
  await assert.rejects(request(`${proxy.url}/`), { code: 'ECONNREFUSED' });
});

test('a reload whose listener cannot bind is rejected and the old configuration stays', async (t) => {
  const backend = await startBackend(t, echo());
  const blocker = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const next = configFromObject({
    access_log: { enabled: false },
    listen: [...proxy.gatehouse.config.listen, { address: `127.0.0.1:${blocker.port}` }],
    routes: [{ match: {}, respond: { status: 500 } }],
  });
  await assert.rejects(proxy.gatehouse.reload(next), /cannot listen/);
  assert.equal((await request(`${proxy.url}/`)).status, 200);
});

test('a reload that turns TLS on for a listener does not wait for the requests in flight on it', { timeout: 15_000 }, async (t) => {
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const backend = await startBackend(t, (_req, res) => void held.then(() => res.end('late')));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const inFlight = request(`${proxy.url}/hold`);
  await waitFor(() => backend.requests.length === 1);
  const ca = await createCa();
  const pair = await writePair(await tempDir(t), 'site', await ca.issue({ names: ['localhost'] }));
  await proxy.gatehouse.reload(
    configFromObject({ access_log: { enabled: false }, ...simpleProxyConfig([backend.url]), listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] } }] }),
  );
  assert.ok(proxy.gatehouse.config.listen[0]?.tls !== undefined, 'reloaded while the request is still held');
  release();
  assert.equal((await inFlight).body, 'late', 'the old listener finishes its request');
});

test('a reload that turns TLS on for a listener but cannot bind another leaves the first serving as before', async (t) => {
  const backend = await startBackend(t, echo());
  const blocker = await startBackend(t, echo());
  // A fixed port, as a file names it, so the TLS listener takes the plain one's place.
  const address = `127.0.0.1:${await freePort()}`;
  const base = { access_log: { enabled: false }, ...simpleProxyConfig([backend.url]) };
  const proxy = await startProxy(t, { ...base, listen: [{ address }] });
  const ca = await createCa();
  const pair = await writePair(await tempDir(t), 'site', await ca.issue({ names: ['localhost'] }));
  const next = configFromObject({ ...base, listen: [{ address, tls: { certificates: [pair] } }, { address: `127.0.0.1:${blocker.port}` }] });
  await assert.rejects(proxy.gatehouse.reload(next), /cannot listen|address already in use/);
  assert.equal((await request(`http://${address}/`)).status, 200, 'still plain HTTP on the address');
  assert.equal(proxy.gatehouse.config.listen[0]?.tls, undefined);
});
