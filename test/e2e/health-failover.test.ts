/** Failover under traffic: a server killed and restarted, and a server that hangs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRawBackend } from '../helpers/backend.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';
import { client, isHealthCheck, runMany, serverView, startNamedBackends, upstreamView, type Handler, type Reply, type Restartable } from '../helpers/upstreams.ts';

/** Answers after a few milliseconds, so that requests are in flight when a backend is killed. */
function withHealth(name: string): Handler {
  return (req, res) => {
    req.resume();
    if (req.url === '/health') res.end('OK');
    else setTimeout(() => res.end(name), 3);
  };
}

test('failover: one of three backends is killed and restarted during 2,000 GETs; no client request fails', async (t) => {
  // The victim dies while it holds a request: that request, and any others in flight to it, are cut.
  let killOnNext = false;
  let killed: Promise<void> | undefined;
  const backends = await startNamedBackends(t, 3, (name) => {
    const normal = withHealth(name);
    return (req, res) => {
      if (name === 'b1' && killOnNext && req.url !== '/health') {
        killOnNext = false;
        killed = victim.stop();
        return;
      }
      normal(req, res);
    };
  });
  const victim = backends[1] as Restartable;
  const proxy = await startProxy(t, {
    upstreams: {
      app: {
        servers: backends.map((b) => ({ url: b.url })),
        health_check: { path: '/health', interval: '100ms', timeout: '100ms', rise: 2, fall: 2 },
        outlier_detection: { consecutive_failures: 1, base_ejection_time: '30s' },
      },
    },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const gh = proxy.gatehouse;
  const get = client(t, proxy.url, 8);
  const replies: Reply[] = [];
  const send = async (count: number, during?: (i: number) => void): Promise<void> => {
    replies.push(
      ...(await runMany(count, 8, (i) => {
        during?.(i);
        return get('/');
      })),
    );
  };

  await send(300);
  // Killed while requests are in flight to it: they are reset, retried, and it is ejected.
  await send(700, (i) => {
    if (i === 50) killOnNext = true;
  });
  assert.ok(killed !== undefined, 'the victim was killed with a request in flight');
  await killed;
  await waitFor(() => serverView(gh, victim.url).state === 'down', 5000, 'the health checks to mark it down');
  await victim.start();
  const restartedAt = victim.requests.length;
  await send(400);
  await waitFor(() => serverView(gh, victim.url).state === 'up', 5000, 'its health checks to pass');
  await send(600);

  assert.equal(replies.length, 2000);
  const failed = replies.filter((r) => r.status !== 200);
  assert.equal(failed.length, 0, `failed: ${JSON.stringify(failed.slice(0, 3))}`);
  assert.ok(upstreamView(gh).retries.total >= 1, 'the requests in flight to the killed server were retried');
  const after = victim.requests.slice(restartedAt);
  const firstProxied = after.findIndex((req) => !isHealthCheck(req));
  assert.ok(firstProxied !== -1, 'the restarted backend takes traffic again');
  assert.ok(after.slice(0, firstProxied).filter(isHealthCheck).length >= 2, 'only after two passing checks (rise: 2)');
  assert.ok(after.filter((req) => !isHealthCheck(req)).length > 100, 'and its share of it');
});

test('a backend that hangs costs clients the header timeout once, then is ejected', async (t) => {
  const TIMEOUT = 300;
  // undici checks header timeouts on its coarse timer (a ~0.5 s tick): one fires up to ~1 s late.
  const TIMER_SLACK = 1200;
  const backends = await startNamedBackends(t, 2);
  // Accepts, reads the request, never answers.
  const hung = await startRawBackend(t, (socket) => socket.resume());
  const proxy = await startProxy(t, {
    upstreams: {
      app: {
        servers: [...backends.map((b) => ({ url: b.url })), { url: hung.url }],
        timeouts: { header: TIMEOUT },
        retries: { retry_on: ['connect_failure', 'reset', 'timeout'] },
        outlier_detection: { consecutive_failures: 1 },
      },
    },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const get = client(t, proxy.url, 1);
  const replies = await runMany(30, 1, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200), 'the timed-out try was retried on another server');
  const slow = replies.filter((r) => r.ms >= TIMEOUT - 20);
  assert.equal(slow.length, 1, `one request waited for the timeout: ${replies.map((r) => r.ms.toFixed(0)).join(' ')}`);
  assert.ok((slow[0]?.ms ?? 0) < TIMEOUT + TIMER_SLACK, `and only about the timeout: ${slow[0]?.ms.toFixed(0)} ms`);
  assert.equal(hung.sockets.length, 1, 'the hung server got one request, then none');
  assert.equal(serverView(proxy.gatehouse, hung.url).state, 'ejected');
});
