/**
 * Two worker threads behaving as one proxy (docs/operations.md#multi-core): connections are spread
 * over both, a rate limit holds in total, bans reach both, a reload moves both or neither, and a
 * worker that dies is replaced while the other keeps serving.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import { Agent, request as undiciRequest } from 'undici';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { Primary } from '../../src/workers/primary.ts';
import { allocateSharedMemory, sharedAcme, sharedHealth, sharedProtection } from '../../src/workers/shared.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { admin, Connection, rawFrom } from '../helpers/clients.ts';
import { request, waitFor } from '../helpers/http.ts';
import { simpleProxyConfig } from '../helpers/proxy.ts';
import { isHealthCheck, startNamedBackends } from '../helpers/upstreams.ts';

interface Running {
  readonly primary: Primary;
  readonly url: string;
  readonly adminPort: number;
}

async function startWorkers(t: TestContext, config: Omit<ConfigInput, 'listen'>, workers = 2): Promise<Running> {
  const full = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    admin: { address: '127.0.0.1:0' },
    access_log: { enabled: false },
    shutdown_timeout: 2000,
    ...config,
  } as ConfigInput);
  const primary = await Primary.start(full, { logger: pino({ level: 'silent' }), workers });
  t.after(() => primary.stop(1000));
  return { primary, url: `http://127.0.0.1:${primary.addresses[0]?.port}`, adminPort: primary.adminAddress?.port ?? 0 };
}

interface WorkerLoad {
  readonly index: number;
  readonly requests: number;
  readonly in_flight: number;
}

async function perWorker(primary: Primary): Promise<WorkerLoad[]> {
  return ((await primary.status()) as { workers: { each: WorkerLoad[] } }).workers.each;
}

/** A request on a connection of its own (so the kernel picks a worker for each). */
const fresh = (url: string, path = '/'): Promise<number> =>
  request(`${url}${path}`, { headers: { connection: 'close' } }).then((r) => r.status, () => 0);

test('workers: connections are spread over both workers; status adds their counts up', async (t) => {
  const backend = await startBackend(t, echo());
  const { primary, url } = await startWorkers(t, simpleProxyConfig([backend.url]));
  const statuses = await Promise.all(Array.from({ length: 60 }, () => fresh(url)));
  assert.ok(statuses.every((s) => s === 200));
  const each = await perWorker(primary);
  assert.equal(each.length, 2);
  assert.ok(each.every((w) => w.requests > 0), `both workers served: ${JSON.stringify(each)}`);
  const status = (await primary.status()) as { upstreams: { app: { servers: { requests: number; weight: number }[] } }; workers: { live: number } };
  assert.equal(status.upstreams.app.servers[0]?.requests, 60, 'the proxy-wide count is the sum');
  assert.equal(status.upstreams.app.servers[0]?.weight, 1, 'settings are not summed');
  assert.equal(status.workers.live, 2);
});

test('workers: a rate limit admits its rate in total, not once per worker', async (t) => {
  const backend = await startBackend(t, echo());
  const { primary, url } = await startWorkers(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', rate_limits: [{ name: 'all', rate: '10/s', burst: 49, key: ['route'] }] }],
  } as Omit<ConfigInput, 'listen'>);
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: 300 }, () => fresh(url)));
  const elapsed = (performance.now() - started) / 1000;
  const allowed = statuses.filter((s) => s === 200).length;
  const most = 50 + Math.ceil(10 * elapsed);
  assert.ok(allowed >= 50 && allowed <= most, `${allowed} allowed in ${elapsed.toFixed(2)} s (50 at once, then 10/s: at most ${most})`);
  assert.equal(allowed + statuses.filter((s) => s === 429).length, 300);
  assert.ok((await perWorker(primary)).every((w) => w.requests > 0), 'both workers took part');
});

test('workers: a ban through the admin API, and one a worker makes itself, hold on every worker at once', async (t) => {
  const backend = await startBackend(t, echo());
  const { url, adminPort } = await startWorkers(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    protection: { bans: { enabled: true, threshold: 3, window: '10s', duration: '1m' } },
    routes: [{ match: {}, upstream: 'app', rate_limits: [{ name: 'ip', rate: '1/s', burst: 0 }] }],
  } as Omit<ConfigInput, 'listen'>);
  const banned = await admin(adminPort, 'POST', '/bans/127.0.0.1?duration=1m');
  assert.equal(banned.status, 200);
  const refused = await Promise.all(Array.from({ length: 20 }, () => fresh(url)));
  assert.deepEqual(new Set(refused), new Set([0]), 'every connection, on either worker, is closed');
  assert.equal((await admin(adminPort, 'DELETE', '/bans')).status, 200);
  await waitFor(async () => (await fresh(url)) === 200, 1000, 'the lift to reach the workers');
  // Now break the rate limit: 3 refusals ban the client, wherever each refusal happened.
  for (let i = 0; i < 8; i++) await fresh(url);
  const list = (await admin(adminPort, 'GET', '/bans')).body as { bans: { client: string; reason: string }[] };
  assert.equal(list.bans[0]?.client, '127.0.0.1', 'the primary knows of the ban a worker made');
  const after = await Promise.all(Array.from({ length: 20 }, () => fresh(url)));
  assert.deepEqual(new Set(after), new Set([0]), 'both workers refuse the banned client');
});

test('workers: a reload under load moves every worker to the new configuration with no failed request; a bad one changes nothing', async (t) => {
  const backend = await startBackend(t, echo());
  const base = simpleProxyConfig([backend.url]);
  const { primary, url } = await startWorkers(t, base);
  const withHeader = (value: string): ConfigInput => ({
    ...base,
    listen: [{ address: '127.0.0.1:0' }],
    admin: { address: '127.0.0.1:0' },
    access_log: { enabled: false },
    routes: [{ match: {}, upstream: 'app', response_headers: { set: { 'x-version': value } } }],
  });
  const agent = new Agent({ connections: 8 });
  t.after(() => agent.close());
  let failures = 0;
  let requests = 0;
  let stop = false;
  const versions = new Set<string>();
  const load = Array.from({ length: 8 }, async () => {
    while (!stop) {
      requests++;
      try {
        const res = await undiciRequest(url, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode !== 200) failures++;
        versions.add(String(res.headers['x-version']));
      } catch {
        failures++;
      }
    }
  });
  try {
    await waitFor(() => requests > 100, 5000, 'load');
    await primary.reload(configFromObject(withHeader('2')));
    await waitFor(() => versions.has('2'), 2000, 'the new configuration to serve');
    // Valid, but no worker can read the certificate: every worker prepares, one fails, all abort.
    const bad = withHeader('3');
    bad.listen = [{ address: '127.0.0.1:0' }, { address: '127.0.0.1:0', tls: { certificates: [{ cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' }] } }];
    await assert.rejects(primary.reload(configFromObject(bad)), /nonexistent\/cert\.pem: cannot read the certificate file/);
    const before = requests;
    await waitFor(() => requests > before + 100, 5000, 'more load');
  } finally {
    stop = true;
    await Promise.all(load);
  }
  assert.equal(failures, 0, `${failures} of ${requests} requests failed`);
  assert.ok(!versions.has('3'), 'the configuration that failed in the workers never served');
  assert.equal(primary.addresses.length, 1);
  const fresh2 = await Promise.all(Array.from({ length: 20 }, () => request(url, { headers: { connection: 'close' } })));
  assert.ok(fresh2.every((r) => r.headers['x-version'] === '2'), 'every worker runs the new configuration');
});

test('workers: a worker that dies is replaced, and requests on the other worker do not fail', async (t) => {
  const backend = await startBackend(t, (req, res) => setTimeout(() => echo()(req, res), 400));
  const { primary, url } = await startWorkers(t, simpleProxyConfig([backend.url]));
  const inFlight = Array.from({ length: 12 }, () => fresh(url));
  await waitFor(async () => (await perWorker(primary)).reduce((n, w) => n + w.in_flight, 0) === 12, 2000, 'every request in flight');
  const onOther = (await perWorker(primary)).find((w) => w.index === 1)?.in_flight ?? 0;
  await primary.terminateWorker(0);
  const results = await Promise.all(inFlight);
  assert.equal(results.filter((s) => s === 200).length, onOther, 'the requests on worker 1 finished; only worker 0 lost its own');
  // Meanwhile and after, new connections are served (the kernel sends none to the dead worker).
  const during = await Promise.all(Array.from({ length: 10 }, () => fresh(url)));
  assert.ok(during.every((s) => s === 200), `answers while replacing: ${during.join(',')}`);
  await waitFor(() => primary.liveWorkers === 2, 5000, 'the replacement worker');
  const status = (await primary.status()) as { workers: { restarts: number } };
  assert.equal(status.workers.restarts, 1);
  const after = await Promise.all(Array.from({ length: 40 }, () => fresh(url)));
  assert.ok(after.every((s) => s === 200));
});

test('workers: each server is checked once, not once per worker; a server found down is skipped by both workers', async (t) => {
  let failing = false;
  const checks: number[] = [];
  const handler = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
    if (isHealthCheck(req)) {
      if (name === 'b0') checks.push(Date.now());
      res.writeHead(failing && name === 'b0' ? 503 : 200).end();
      return;
    }
    res.end(name);
  };
  const [b0, b1] = await startNamedBackends(t, 2, handler);
  const { url, primary } = await startWorkers(t, {
    // fall: 2 and the whole interval as timeout: a loaded machine's slow check of b1 does not take it out too.
    upstreams: { app: { servers: [{ url: b0!.url }, { url: b1!.url }], health_check: { path: '/health', interval: '100ms', timeout: '100ms', rise: 1, fall: 2 } } },
    routes: [{ match: {}, upstream: 'app' }],
  } as Omit<ConfigInput, 'listen'>);
  const from = checks.length;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const perSecond = checks.length - from;
  assert.ok(perSecond >= 7 && perSecond <= 13, `${perSecond} checks of b0 in a second at a 100 ms interval (two workers checking would make ~20)`);
  failing = true;
  type Servers = { upstreams: { app: { servers: { state: string }[] } } };
  await waitFor(async () => ((await primary.status()) as Servers).upstreams.app.servers[0]?.state === 'down', 5000, 'b0 found down');
  // Only the first worker checks: the second skips b0 because it was told.
  const bodies = await Promise.all(Array.from({ length: 40 }, () => request(url, { headers: { connection: 'close' } }).then((r) => r.body)));
  assert.equal(bodies.filter((body) => body === 'b0').length, 0, `no worker sends to b0: ${bodies.join(',')}`);
  assert.ok(bodies.includes('b1'));
});

test('workers: a TLS session ticket from one worker resumes on the other', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, echo());
  const full = configFromObject({
    ...simpleProxyConfig([backend.url]),
    listen: [{ address: '127.0.0.1:0', tls: { certificates: [pair] } }],
    access_log: { enabled: false },
  } as ConfigInput);
  const primary = await Primary.start(full, { logger: pino({ level: 'silent' }), workers: 2 });
  t.after(() => primary.stop(1000));
  const port = primary.addresses[0]?.port ?? 0;
  const handshake = async (session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'site.test', ALPNProtocols: ['http/1.1'], ...(session === undefined ? {} : { session }) });
    let ticket: Buffer | undefined;
    socket.on('session', (s: Buffer) => (ticket = s));
    await once(socket, 'secureConnect');
    const reused = socket.isSessionReused();
    if (!reused) await waitFor(() => ticket !== undefined, 2000, 'a session ticket');
    socket.destroy();
    return { reused, session: ticket };
  };
  const first = await handshake();
  const resumed = await Promise.all(Array.from({ length: 20 }, () => handshake(first.session)));
  assert.equal(resumed.filter((r) => r.reused).length, 20, 'every connection resumed, whichever worker took it');
});

test('workers: a worker that aborts a reload turning TLS on for an address keeps serving it as before', async (t) => {
  const ca = await createCa();
  const dir = await tempDir(t);
  const pair = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, echo());
  const memory = allocateSharedMemory(1000, 2);
  const protection = sharedProtection(memory);
  const health = sharedHealth(memory, true);
  const acme = sharedAcme(memory, health);
  const base = { ...simpleProxyConfig([backend.url]), access_log: { enabled: false } } as ConfigInput;
  const gatehouse = await Gatehouse.start(configFromObject({ ...base, listen: [{ address: '127.0.0.1:0' }] } as ConfigInput), {
    logger: pino({ level: 'silent' }),
    worker: { protection, health, acme, ticketSecret: Buffer.from(memory.ticketSecret) },
  });
  t.after(async () => {
    await gatehouse.stop(500);
    protection.close();
    health.close();
    acme.close();
  });
  // As the primary hands it over: the address with its port.
  const address = `127.0.0.1:${gatehouse.addresses[0]?.port}`;
  gatehouse.commitReload(await gatehouse.prepareReload(configFromObject({ ...base, listen: [{ address }] } as ConfigInput)));
  const prepared = await gatehouse.prepareReload(configFromObject({ ...base, listen: [{ address, tls: { certificates: [pair] } }] } as ConfigInput));
  // Another worker could not prepare: this one drops what it prepared.
  await gatehouse.abortReload(prepared);
  const after = await Promise.all(Array.from({ length: 10 }, () => fresh(`http://${address}`)));
  assert.deepEqual(new Set(after), new Set([200]), 'the address still serves plain HTTP');
  // Committed, the TLS listener takes the old one's place.
  gatehouse.commitReload(await gatehouse.prepareReload(configFromObject({ ...base, listen: [{ address, tls: { certificates: [pair] } }] } as ConfigInput)));
  const plain = await Promise.all(Array.from({ length: 10 }, () => fresh(`http://${address}`)));
  assert.ok(plain.every((s) => s !== 200), `plain HTTP is no longer served: ${plain.join(',')}`);
});

test('workers: a worker that replaces a dead one enforces the bans made before it started', async (t) => {
  const backend = await startBackend(t, echo());
  const { primary, url, adminPort } = await startWorkers(t, simpleProxyConfig([backend.url]));
  assert.equal((await admin(adminPort, 'POST', '/bans/127.0.0.1?duration=1m')).status, 200);
  await primary.terminateWorker(0);
  await waitFor(() => primary.liveWorkers === 2, 5000, 'the replacement worker');
  await waitFor(async () => (await Promise.all(Array.from({ length: 20 }, () => fresh(url)))).every((s) => s === 0), 2000, 'the ban on the new worker');
});

test('workers: a worker that replaces a dead one keeps the servers drained through the admin API out', async (t) => {
  const [b0, b1] = await startNamedBackends(t, 2, (name) => (_req: IncomingMessage, res: ServerResponse) => void res.end(name));
  const { primary, url, adminPort } = await startWorkers(t, { upstreams: { app: { servers: [{ url: b0!.url }, { url: b1!.url }] } }, routes: [{ match: {}, upstream: 'app' }] } as Omit<ConfigInput, 'listen'>);
  assert.equal((await admin(adminPort, 'POST', '/upstreams/app/servers/0/drain')).status, 200);
  await primary.terminateWorker(0);
  await waitFor(() => primary.liveWorkers === 2, 5000, 'the replacement worker');
  // Told once it serves: wait for that message, not for a fixed time.
  const spread = async (): Promise<Set<string>> => new Set(await Promise.all(Array.from({ length: 30 }, () => request(url, { headers: { connection: 'close' } }).then((r) => r.body))));
  await waitFor(async () => (await spread()).size === 1, 2000, 'the drain on the new worker');
  assert.deepEqual(await spread(), new Set(['b1']));
});

test('workers: a per-client connection limit holds across workers; a worker that dies gives its clients their slots back', async (t) => {
  const backend = await startBackend(t, echo());
  const { primary, url } = await startWorkers(t, { ...simpleProxyConfig([backend.url]), protection: { max_connections_per_client: 4 } });
  const port = primary.addresses[0]?.port ?? 0;
  const held = [];
  for (let i = 0; i < 4; i++) {
    const connection = await Connection.open(t, port, '127.0.0.2');
    assert.equal((await connection.get('/')).status, 200);
    held.push(connection);
  }
  const spread = (await perWorker(primary)).map((w) => w.requests);
  for (let i = 0; i < 6; i++) assert.equal(await rawFrom('127.0.0.2', port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), '', `a fifth connection is refused, on either worker (${spread.join('/')})`);
  assert.equal((await request(url, { headers: { connection: 'close' } })).status, 200, 'another client is not affected');
  await primary.terminateWorker(0);
  await waitFor(() => primary.liveWorkers === 2, 5000, 'the replacement worker');
  await waitFor(async () => /^HTTP\/1\.1 200 /.test(await rawFrom('127.0.0.2', port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')), 3000, 'a slot for the client');
});

test('workers: when the worker that runs the health checks dies, another takes them over at once, and its replacement does not check too', async (t) => {
  const checks: number[] = [];
  const [b0] = await startNamedBackends(t, 1, (name) => (req: IncomingMessage, res: ServerResponse) => {
    if (isHealthCheck(req)) checks.push(Date.now());
    res.end(name);
  });
  const { primary } = await startWorkers(t, {
    upstreams: { app: { servers: [{ url: b0!.url }], health_check: { path: '/health', interval: '100ms', timeout: '50ms' } } },
    routes: [{ match: {}, upstream: 'app' }],
  } as Omit<ConfigInput, 'listen'>);
  await waitFor(() => checks.length >= 3, 3000, 'the first checks');
  await primary.terminateWorker(0);
  const killedAt = Date.now();
  await waitFor(() => primary.liveWorkers === 2, 5000, 'the replacement worker');
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The replacement takes a while to start; the other worker checked meanwhile, every 100 ms.
  const around = [...checks.filter((at) => at >= killedAt - 150), Date.now()];
  const gap = Math.max(...around.slice(1).map((at, i) => at - (around[i] as number)));
  assert.ok(gap < 300, `the longest gap between checks while the worker was replaced: ${gap} ms`);
  const from = checks.length;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const perSecond = checks.length - from;
  assert.ok(perSecond >= 7 && perSecond <= 13, `${perSecond} checks in a second after the replacement (two checking workers would make ~20)`);
});
