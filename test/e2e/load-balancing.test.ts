/**
 * Balancing algorithms measured end to end: real backends, the proxy in-process, many requests
 * through real sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';
import { client, runMany, startNamedBackends, startRestartable, tally, type Handler, type Restartable } from '../helpers/upstreams.ts';

const REQUESTS = 10_000;

function config(backends: readonly Restartable[], balance: string, weights: readonly number[], extra: Record<string, unknown> = {}) {
  return {
    upstreams: { app: { balance, servers: backends.map((b, i) => ({ url: b.url, weight: weights[i] ?? 1 })), ...extra } },
    routes: [{ match: {}, upstream: 'app' }],
  } as Parameters<typeof startProxy>[1];
}

/** Each server's share is within ±5% (relative) of its weight's share. */
function assertShares(counts: Record<string, number>, weights: readonly number[], total: number): void {
  const sum = weights.reduce((a, b) => a + b, 0);
  weights.forEach((weight, i) => {
    const expected = (total * weight) / sum;
    const got = counts[`b${i}`] ?? 0;
    assert.ok(Math.abs(got - expected) <= expected * 0.05, `b${i} (weight ${weight}) got ${got}, expected ${expected.toFixed(0)} ± 5%`);
  });
}

test('round_robin: 10,000 requests follow the weights within ±5%', async (t) => {
  const weights = [1, 2, 3, 4];
  const backends = await startNamedBackends(t, weights.length);
  const proxy = await startProxy(t, config(backends, 'round_robin', weights));
  const get = client(t, proxy.url);
  const replies = await runMany(REQUESTS, 16, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200));
  assertShares(tally(replies.map((r) => r.body)), weights, REQUESTS);
});

test('random: 10,000 requests follow the weights within ±5%', async (t) => {
  // Shares of 40% and 60%: ±5% of them is more than 4 standard deviations of 10,000 random draws,
  // so the test does not fail by chance (the unit tests check more weights over more picks).
  const weights = [2, 3];
  const backends = await startNamedBackends(t, weights.length);
  const proxy = await startProxy(t, config(backends, 'random', weights));
  const get = client(t, proxy.url);
  const replies = await runMany(REQUESTS, 16, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200));
  assertShares(tally(replies.map((r) => r.body)), weights, REQUESTS);
});

/** Answers after `ms` milliseconds. */
function slow(name: string, ms: number): Handler {
  return (req, res) => {
    req.resume();
    setTimeout(() => res.end(name), ms);
  };
}

test('p2c sends measurably less traffic to a backend 10× slower than its peers', async (t) => {
  const fast1 = await startRestartable(t, 'fast1', slow('fast1', 3));
  const fast2 = await startRestartable(t, 'fast2', slow('fast2', 3));
  const slowOne = await startRestartable(t, 'slow', slow('slow', 30));
  const proxy = await startProxy(t, config([fast1, fast2, slowOne], 'p2c', [1, 1, 1]));
  const get = client(t, proxy.url);
  const replies = await runMany(900, 6, () => get('/'));
  assert.ok(replies.every((r) => r.status === 200));
  const counts = tally(replies.map((r) => r.body));
  const slowShare = (counts['slow'] ?? 0) / replies.length;
  // A fair share would be a third; p2c should give the slow server a small fraction of that.
  assert.ok(slowShare < 1 / 6, `the slow backend got ${(slowShare * 100).toFixed(1)}% (${JSON.stringify(counts)})`);
  assert.ok((counts['slow'] ?? 0) > 0, 'the slow backend is still measured now and then');
});

test('least_conn sends new requests to the server with the fewest in flight', async (t) => {
  // b0 holds its requests until released (while `holding`); b1 answers at once.
  const held: (() => void)[] = [];
  let holding = true;
  const b0 = await startRestartable(t, 'b0', (req, res) => {
    req.resume();
    if (holding) held.push(() => res.end('b0'));
    else res.end('b0');
  });
  const b1 = await startRestartable(t, 'b1', slow('b1', 0));
  const proxy = await startProxy(t, config([b0, b1], 'least_conn', [1, 1]));
  const get = client(t, proxy.url);
  // One request held by b0 (b1 drained meanwhile, so that it goes there).
  proxy.gatehouse.drain('app', '1', true);
  const first = get('/');
  await waitFor(() => held.length === 1, 2000, 'one request held by b0');
  proxy.gatehouse.drain('app', '1', false);
  // While b0 holds one, every new request goes to b1, which has none.
  const replies = await runMany(50, 1, () => get('/'));
  assert.deepEqual(tally(replies.map((r) => r.body)), { b1: 50 });
  // Both idle again: ties are broken at random.
  holding = false;
  for (const release of held) release();
  await first;
  const spread = tally((await runMany(200, 1, () => get('/'))).map((r) => r.body));
  assert.ok((spread['b0'] ?? 0) > 40 && (spread['b1'] ?? 0) > 40, JSON.stringify(spread));
});

test('first fills servers in order up to their max_in_flight', async (t) => {
  const held: (() => void)[] = [];
  const hold = (name: string): Handler => (req, res) => {
    req.resume();
    held.push(() => res.end(name));
  };
  const backends = [await startRestartable(t, 'b0', hold('b0')), await startRestartable(t, 'b1', hold('b1')), await startRestartable(t, 'b2', hold('b2'))];
  const proxy = await startProxy(t, {
    upstreams: { app: { balance: 'first', servers: backends.map((b) => ({ url: b.url, max_in_flight: 2 })) } },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const get = client(t, proxy.url);
  const pending = Array.from({ length: 5 }, () => get('/'));
  await waitFor(() => held.length === 5, 2000, 'five requests held');
  assert.deepEqual(
    backends.map((b) => b.requests.length),
    [2, 2, 1],
    'the first two servers are filled before the third gets any',
  );
  for (const release of held) release();
  await Promise.all(pending);
  // Idle again: everything goes to the first server.
  held.length = 0;
  const again = get('/');
  await waitFor(() => held.length === 1, 2000, 'one request held');
  assert.equal(backends[0]?.requests.length, 3);
  for (const release of held) release();
  await again;
});
