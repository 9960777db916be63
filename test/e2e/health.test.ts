/** Active and passive health checking, drain, backups, slow start, end to end. */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { startRawBackend } from '../helpers/backend.ts';
import { request, waitFor } from '../helpers/http.ts';
import { collectingLogger } from '../helpers/logs.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';
import { client, isHealthCheck, runMany, serverView, startRestartable, tally, upstreamView, type Handler, type Restartable } from '../helpers/upstreams.ts';

/** Serves `name`, and /health as `health()` says: [status, body]. */
function withHealth(name: string, health: () => [number, string]): Handler {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/health') {
      const [status, body] = health();
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
      return;
    }
    res.end(name);
  };
}

function upstreamOf(backends: readonly Restartable[], extra: Record<string, unknown>): Omit<ConfigInput, 'listen'> {
  return simpleProxyConfig(backends.map((b) => b.url), extra);
}

const FAST_CHECKS = { path: '/health', interval: '50ms', timeout: '50ms', rise: 2, fall: 2 };

test('active HTTP checks: a server failing its status or body check is taken out, and back after rise passes', async (t) => {
  let b1Health: [number, string] = [200, 'OK'];
  const b0 = await startRestartable(t, 'b0', withHealth('b0', () => [200, 'all OK']));
  const b1 = await startRestartable(t, 'b1', withHealth('b1', () => b1Health));
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    ...upstreamOf([b0, b1], { health_check: { ...FAST_CHECKS, expect_status: ['200-299'], expect_body: 'OK' } }),
  });
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 2);
  await waitFor(() => serverView(gh, b1.url).last_check?.ok === true && serverView(gh, b0.url).last_check?.ok === true, 3000, 'first checks');
  const check = b1.requests.find(isHealthCheck);
  assert.equal(check?.method, 'GET');
  assert.equal(check?.url, '/health', 'the configured path');
  assert.equal(check?.headers.host, `127.0.0.1:${b1.port}`, 'the Host of a check is the server');

  b1Health = [503, 'OK'];
  await waitFor(() => serverView(gh, b1.url).state === 'down', 3000, 'b1 down on a bad status');
  const admin = `http://127.0.0.1:${gh.adminAddress?.port}`;
  const status = JSON.parse((await request(`${admin}/status`)).body);
  const viewed = status.upstreams.app.servers[1];
  assert.equal(viewed.state, 'down');
  assert.equal(viewed.last_check.ok, false);
  assert.equal(viewed.last_check.detail, 'status 503 not expected');
  assert.ok(viewed.last_check.ms >= 0 && !Number.isNaN(Date.parse(viewed.last_check.at)));
  assert.deepEqual(status.upstreams.app.available, [b0.url]);
  assert.deepEqual(tally((await runMany(20, 2, () => get('/'))).map((r) => r.body)), { b0: 20 });

  b1Health = [200, 'OK'];
  await waitFor(() => serverView(gh, b1.url).state === 'up', 3000, 'b1 up again');
  assert.deepEqual(tally((await runMany(20, 1, () => get('/'))).map((r) => r.body)), { b0: 10, b1: 10 });

  b1Health = [200, 'maintenance'];
  await waitFor(() => serverView(gh, b1.url).state === 'down', 3000, 'b1 down on a body without the text');
  assert.equal(serverView(gh, b1.url).last_check?.detail, 'expected body text not found');
});

test('a check that takes longer than its timeout fails', async (t) => {
  let delay = 0;
  const b0 = await startRestartable(t, 'b0', (req, res) => {
    req.resume();
    setTimeout(() => res.end('b0'), req.url === '/health' ? delay : 0);
  });
  const b1 = await startRestartable(t, 'b1');
  const proxy = await startProxy(t, upstreamOf([b0, b1], { health_check: { path: '/health', interval: '100ms', timeout: '30ms', fall: 1 } }));
  await waitFor(() => serverView(proxy.gatehouse, b0.url).last_check?.ok === true, 3000, 'a passing check');
  delay = 500;
  await waitFor(() => serverView(proxy.gatehouse, b0.url).state === 'down', 3000, 'down after a slow check');
  assert.equal(serverView(proxy.gatehouse, b0.url).last_check?.detail, 'timeout');
});

test('TCP checks: a server that stops listening goes down, and comes back when it listens again', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const proxy = await startProxy(t, upstreamOf([b0, b1], { health_check: { type: 'tcp', interval: '50ms', timeout: '50ms', rise: 1, fall: 1 } }));
  const gh = proxy.gatehouse;
  await waitFor(() => serverView(gh, b1.url).last_check?.detail === 'connected', 3000, 'a TCP check');
  assert.ok(!b1.requests.some(isHealthCheck), 'a TCP check sends no request');
  await b1.stop();
  await waitFor(() => serverView(gh, b1.url).state === 'down', 3000, 'b1 down');
  assert.equal(serverView(gh, b1.url).last_check?.detail, 'ECONNREFUSED');
  await b1.start();
  await waitFor(() => serverView(gh, b1.url).state === 'up', 3000, 'b1 up');
});

test('passive checks: consecutive failures eject a server for a time that grows; clients see no error', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const broken = await startRawBackend(t, (socket) => socket.once('data', () => socket.resetAndDestroy()));
  const proxy = await startProxy(t, {
    upstreams: {
      app: {
        servers: [{ url: b0.url }, { url: b1.url }, { url: broken.url }],
        outlier_detection: { consecutive_failures: 2, base_ejection_time: '1s', max_ejection_time: '5s' },
      },
    },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 2);
  // Resets are retried on another server (GET is idempotent): every client request succeeds.
  const replies = await runMany(30, 1, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200), 'no client saw the failures');
  const first = serverView(gh, broken.url);
  assert.equal(first.state, 'ejected');
  assert.equal(first.ejections, 1);
  assert.ok((first.ejected_for_ms ?? 0) <= 1000);
  assert.equal(broken.sockets.length, 2, 'two failures, then no more traffic');

  await waitFor(() => serverView(gh, broken.url).state === 'up', 3000, 'the ejection to end');
  await runMany(30, 1, () => get('/'));
  const second = serverView(gh, broken.url);
  assert.equal(second.state, 'ejected');
  assert.equal(second.ejections, 2);
  assert.ok((second.ejected_for_ms ?? 0) > 1000, `the second ejection is longer: ${second.ejected_for_ms} ms`);
  assert.equal(serverView(gh, b0.url).ejections, 0);
});

test('passive checks: an ejected server is back as soon as it works again, on trial; a failed trial ejects it for longer', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const proxy = await startProxy(t, {
    upstreams: {
      app: {
        servers: [{ url: b0.url }, { url: b1.url }],
        // The default ejection (30 s, growing to 5 min) would keep b1 out long after it recovered.
        outlier_detection: { consecutive_failures: 1, recovery_probe_interval: '100ms' },
      },
    },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 2);
  await b1.stop();
  assert.ok((await runMany(6, 1, () => get('/'))).every((r) => r.status === 200), 'the refused connection was retried on b0');
  assert.equal(serverView(gh, b1.url).state, 'ejected');
  assert.ok((serverView(gh, b1.url).ejected_for_ms ?? 0) > 20_000);

  await b1.start();
  await waitFor(() => serverView(gh, b1.url).state === 'up', 3000, 'b1 back within a few probes, not after 30 s');
  assert.equal(serverView(gh, b1.url).on_trial, true);
  const served = tally((await runMany(10, 1, () => get('/'))).map((r) => r.body));
  assert.ok((served.b1 ?? 0) > 0, `b1 takes traffic again: ${JSON.stringify(served)}`);
  const back = serverView(gh, b1.url);
  assert.equal(back.on_trial, undefined, 'its good answer ended the trial');
  assert.equal(back.ejections, 0, 'and forgave the ejection');

  // A server that fails its trial is ejected again at once, and for longer.
  await b1.stop();
  await runMany(4, 1, () => get('/'));
  assert.equal(serverView(gh, b1.url).ejections, 1);
  await b1.start();
  await waitFor(() => serverView(gh, b1.url).on_trial === true, 3000, 'b1 on trial');
  await b1.stop();
  assert.ok((await runMany(4, 1, () => get('/'))).every((r) => r.status === 200));
  const again = serverView(gh, b1.url);
  assert.equal(again.state, 'ejected');
  assert.equal(again.ejections, 2, 'one failure on trial is enough');
  assert.ok((again.ejected_for_ms ?? 0) > 30_000, `the second ejection is longer: ${again.ejected_for_ms} ms`);
});

test('passive checks: max_ejection_percent caps how many servers are ejected at once', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const reset = () => startRawBackend(t, (socket) => socket.once('data', () => socket.resetAndDestroy()));
  const bad1 = await reset();
  const bad2 = await reset();
  const proxy = await startProxy(t, {
    upstreams: {
      app: {
        servers: [b0.url, b1.url, bad1.url, bad2.url].map((url) => ({ url })),
        outlier_detection: { consecutive_failures: 1, base_ejection_time: '10s', max_ejection_percent: 25 },
      },
    },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const get = client(t, proxy.url, 2);
  const replies = await runMany(40, 1, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200));
  const states = upstreamView(proxy.gatehouse).servers.map((s) => s.state);
  assert.equal(states.filter((s) => s === 'ejected').length, 1, `one of four (25%) at most: ${states}`);
});

test('drain (admin API): no new requests, in-flight ones finish; undrain puts the server back', async (t) => {
  const held: (() => void)[] = [];
  const b0 = await startRestartable(t, 'b0', (req, res) => {
    req.resume();
    if (req.url === '/hold') held.push(() => res.end('b0 held'));
    else res.end('b0');
  });
  const b1 = await startRestartable(t, 'b1');
  const proxy = await startProxy(t, { admin: { address: '127.0.0.1:0' }, ...upstreamOf([b0, b1], { balance: 'first' }) });
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  const get = client(t, proxy.url, 4);
  const inFlight = get('/hold');
  await waitFor(() => held.length === 1, 2000, 'a request in flight on b0');

  const drained = await request(`${admin}/upstreams/app/servers/0/drain`, { method: 'POST' });
  assert.equal(drained.status, 200);
  assert.equal(JSON.parse(drained.body).state, 'draining');
  assert.equal(JSON.parse(drained.body).in_flight, 1);
  assert.deepEqual(tally((await runMany(10, 2, () => get('/'))).map((r) => r.body)), { b1: 10 });
  (held[0] as () => void)();
  const finished = await inFlight;
  assert.equal(finished.status, 200);
  assert.equal(finished.body, 'b0 held', 'the in-flight request was not cut');

  assert.equal((await request(`${admin}/upstreams/app/servers/${encodeURIComponent(b0.url)}/undrain`, { method: 'POST' })).status, 200);
  assert.equal(serverView(proxy.gatehouse, b0.url).state, 'up');
  assert.equal((await get('/')).body, 'b0');
  assert.equal((await request(`${admin}/upstreams/app/servers/9/drain`, { method: 'POST' })).status, 404);
  assert.equal((await request(`${admin}/upstreams/nope/servers/0/drain`, { method: 'POST' })).status, 404);
});

test('drain (configuration) and backup servers: backups take traffic only when no primary is available', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const backup = await startRestartable(t, 'backup');
  const servers = (drainB1: boolean) => [{ url: b0.url }, { url: b1.url, drain: drainB1 }, { url: backup.url, backup: true }];
  const proxy = await startProxy(t, { upstreams: { app: { servers: servers(true) } }, routes: [{ match: {}, upstream: 'app' }] });
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 2);
  assert.equal(serverView(gh, b1.url).state, 'draining');
  assert.equal(serverView(gh, backup.url).backup, true);
  assert.deepEqual(tally((await runMany(10, 2, () => get('/'))).map((r) => r.body)), { b0: 10 });

  // The last primary drained too: the backup takes over.
  gh.drain('app', '0', true);
  assert.deepEqual(tally((await runMany(10, 2, () => get('/'))).map((r) => r.body)), { backup: 10 });
  gh.drain('app', '0', false);
  assert.deepEqual(tally((await runMany(10, 2, () => get('/'))).map((r) => r.body)), { b0: 10 });

  // A reload that lifts the configured drain brings b1 back.
  await gh.reload(configFromObject({ listen: gh.config.listen, access_log: { enabled: false }, upstreams: { app: { servers: servers(false) } }, routes: [{ match: {}, upstream: 'app' }] }));
  assert.deepEqual(tally((await runMany(10, 1, () => get('/'))).map((r) => r.body)), { b0: 5, b1: 5 });
});

test('no available server: 503 with Retry-After', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const proxy = await startProxy(t, upstreamOf([b0], { servers: [{ url: b0.url, drain: true }] }));
  const res = await request(`${proxy.url}/`);
  assert.equal(res.status, 503);
  assert.equal(res.headers['retry-after'], '1');
  assert.equal(b0.requests.length, 0);
});

test('slow start: a server that comes back gets a share that ramps up to its weight', async (t) => {
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const proxy = await startProxy(t, upstreamOf([b0, b1], { slow_start: '2s' }));
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 1);
  assert.equal(serverView(gh, b1.url).slow_start_share, undefined, 'no ramp at start');
  gh.drain('app', '1', true);
  gh.drain('app', '1', false);
  const early = serverView(gh, b1.url).slow_start_share ?? 1;
  assert.ok(early < 0.2, `a small share at first: ${early}`);
  const counts = tally((await runMany(100, 1, () => get('/'))).map((r) => r.body));
  // Whatever the pace of the requests, b1's share stayed below what its weight had reached by the end.
  const reached = serverView(gh, b1.url).slow_start_share ?? 1;
  const b1Share = (counts['b1'] ?? 0) / 100;
  assert.ok(b1Share <= reached / (1 + reached) + 0.05, `b1 got ${b1Share} while ramping to ${reached}`);
  assert.ok((counts['b1'] ?? 0) < (counts['b0'] ?? 0), JSON.stringify(counts));
  await waitFor(() => (serverView(gh, b1.url).slow_start_share ?? 1) > early, 3000, 'the share to grow');
  await waitFor(() => serverView(gh, b1.url).slow_start_share === undefined, 5000, 'the ramp to end');
  assert.deepEqual(tally((await runMany(20, 1, () => get('/'))).map((r) => r.body)), { b0: 10, b1: 10 });
});

test('health state survives a reload; checks of a removed server stop, and all stop with the proxy', async (t) => {
  let b1Healthy = true;
  const b0 = await startRestartable(t, 'b0', withHealth('b0', () => [200, 'OK']));
  const b1 = await startRestartable(t, 'b1', withHealth('b1', () => (b1Healthy ? [200, 'OK'] : [500, 'no'])));
  const health = { path: '/health', interval: '30ms', timeout: '30ms', rise: 3, fall: 1 };
  const config = (servers: Restartable[], extraRoute = false) =>
    configFromObject({
      listen: [{ address: '127.0.0.1:0' }],
      access_log: { enabled: false },
      upstreams: { app: { servers: servers.map((b) => ({ url: b.url })), health_check: health } },
      routes: [...(extraRoute ? [{ match: { path: '/x' }, respond: { status: 204 } }] : []), { match: {}, upstream: 'app' }],
    });
  const gh = await Gatehouse.start(config([b0, b1]), { logger: pino({ level: 'silent' }) });
  t.after(() => gh.stop(100));
  const checks = (b: Restartable): number => b.requests.filter(isHealthCheck).length;

  b1Healthy = false;
  await waitFor(() => serverView(gh, b1.url).state === 'down', 3000, 'b1 down');
  await gh.reload({ ...config([b0, b1], true), listen: gh.config.listen });
  assert.equal(serverView(gh, b1.url).state, 'down', 'still down right after the reload: the state was kept');
  const before = checks(b1);
  await waitFor(() => checks(b1) >= before + 2, 3000, 'checks going on after the reload');

  await gh.reload({ ...config([b0], true), listen: gh.config.listen });
  const removedAt = checks(b1);
  const b0At = checks(b0);
  await waitFor(() => checks(b0) >= b0At + 5, 3000, 'five more checks of b0');
  assert.ok(checks(b1) <= removedAt + 1, 'no check of the removed server started after the reload');

  // A second proxy keeps checking its own server: the clock for "the first one stopped".
  const witness = await startRestartable(t, 'witness', withHealth('w', () => [200, 'OK']));
  const other = await Gatehouse.start(config([witness]), { logger: pino({ level: 'silent' }) });
  t.after(() => other.stop(100));
  await gh.stop(100);
  const stoppedAt = checks(b0);
  const witnessAt = checks(witness);
  await waitFor(() => checks(witness) >= witnessAt + 5, 3000, 'five checks by the other proxy');
  assert.equal(checks(b0), stoppedAt, 'no check after stop()');
});

test('state changes are logged', async (t) => {
  const { logger, lines } = collectingLogger({ level: 'info', base: null });
  const b0 = await startRestartable(t, 'b0');
  const b1 = await startRestartable(t, 'b1');
  const gh = await Gatehouse.start(
    configFromObject({
      listen: [{ address: '127.0.0.1:0' }],
      access_log: { enabled: false },
      upstreams: { app: { servers: [{ url: b0.url }, { url: b1.url }], health_check: { type: 'tcp', interval: '30ms', timeout: '30ms', rise: 1, fall: 1 } } },
      routes: [{ match: {}, upstream: 'app' }],
    }),
    { logger },
  );
  t.after(() => gh.stop(100));
  await b1.stop();
  await waitFor(() => lines.some((l) => l['to'] === 'down'), 3000, 'a "down" log line');
  gh.drain('app', '0', true);
  await b1.start();
  await waitFor(() => lines.some((l) => l['to'] === 'up'), 3000, 'an "up" log line');
  const changes = lines.filter((l) => l['msg'] === 'server state changed');
  const down = changes.find((l) => l['to'] === 'down');
  assert.equal(down?.['upstream'], 'app');
  assert.equal(down?.['server'], b1.url);
  assert.equal(down?.['from'], 'up');
  assert.equal(down?.['level'], 40, 'down is a warning');
  assert.match(String(down?.['reason']), /health check failed 1 times \(last: ECONNREFUSED\)/);
  assert.ok(changes.some((l) => l['to'] === 'draining' && l['server'] === b0.url && String(l['reason']).includes('admin')));
});
