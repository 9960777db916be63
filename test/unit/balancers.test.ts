/** Pure logic of the balancers, Maglev, request keys, the retry budget, the queue and ejection policy. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Pool } from 'undici';
import type { Exchange } from '../../src/core/exchange.ts';
import type { Balancer } from '../../src/upstream/balancers/balancer.ts';
import { FirstBalancer } from '../../src/upstream/balancers/first.ts';
import { HashBalancer } from '../../src/upstream/balancers/hash.ts';
import { LeastConnBalancer } from '../../src/upstream/balancers/least-conn.ts';
import { buildTable } from '../../src/upstream/balancers/maglev.ts';
import { P2cBalancer } from '../../src/upstream/balancers/p2c.ts';
import { RandomBalancer } from '../../src/upstream/balancers/random.ts';
import { decayedEjections, ejectionCap, ejectionTime, recoveryProbeDelay, type OutlierPolicy } from '../../src/upstream/health/outlier.ts';
import { cookieValue, hashString, queryValue } from '../../src/upstream/request-keys.ts';
import { RetryBudget } from '../../src/upstream/retry.ts';
import { Server } from '../../src/upstream/server.ts';
import { ADMITTED, QUEUED, REJECTED, UpstreamState, type QueuedRequest } from '../../src/upstream/upstream-state.ts';

function servers(count: number, maxInFlight = 0): Server[] {
  return Array.from(
    { length: count },
    (_, i) => new Server(new URL(`http://10.0.0.${i + 1}:80`), 1, null as unknown as Pool, `k${i}`, undefined, { backup: false, drain: false, maxInFlight }),
  );
}

function shares(balancer: Balancer, list: readonly Server[], picks: number, ex?: (i: number) => Exchange): number[] {
  const counts = new Map<Server, number>();
  for (let i = 0; i < picks; i++) {
    const s = balancer.pick(ex?.(i)) as Server;
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return list.map((s) => (counts.get(s) ?? 0) / picks);
}

function assertNear(actual: readonly number[], expected: readonly number[], tolerance: number): void {
  actual.forEach((a, i) => assert.ok(Math.abs(a - (expected[i] as number)) <= tolerance, `share ${i}: ${a.toFixed(4)} vs ${expected[i]}`));
}

describe('random', () => {
  test('follows the weights', () => {
    const list = servers(4);
    const balancer = new RandomBalancer();
    balancer.update(list, [1, 2, 3, 4]);
    assertNear(shares(balancer, list, 200_000), [0.1, 0.2, 0.3, 0.4], 0.006);
  });

  test('equal weights are uniform; no server gives undefined', () => {
    const list = servers(3);
    const balancer = new RandomBalancer();
    balancer.update(list, [5, 5, 5]);
    assertNear(shares(balancer, list, 90_000), [1 / 3, 1 / 3, 1 / 3], 0.01);
    balancer.update([], []);
    assert.equal(balancer.pick(), undefined);
  });
});

describe('least_conn', () => {
  test('picks the fewest in flight relative to weight', () => {
    const list = servers(3);
    const balancer = new LeastConnBalancer();
    balancer.update(list, [1, 1, 4]);
    (list[0] as Server).state.inFlight = 2;
    (list[1] as Server).state.inFlight = 1;
    (list[2] as Server).state.inFlight = 3; // 3/4 < 1/1
    assert.equal(balancer.pick(), list[2]);
    (list[2] as Server).state.inFlight = 8; // 8/4 > 1/1
    assert.equal(balancer.pick(), list[1]);
  });

  test('ties are broken at random, by weight', () => {
    const list = servers(3);
    const balancer = new LeastConnBalancer();
    balancer.update(list, [1, 1, 2]);
    assertNear(shares(balancer, list, 80_000), [0.25, 0.25, 0.5], 0.01);
  });
});

describe('p2c', () => {
  test('prefers the server with the lower latency × load, and never picks one server twice in a pair', () => {
    const list = servers(2);
    const balancer = new P2cBalancer();
    balancer.update(list, [1, 1]);
    const now = performance.now();
    (list[0] as Server).state.observeLatency(10, now);
    (list[1] as Server).state.observeLatency(1, now);
    assertNear(shares(balancer, list, 1000), [0, 1], 0);
    (list[1] as Server).state.inFlight = 20; // 1 ms × 21 > 10 ms × 1
    assertNear(shares(balancer, list, 1000), [1, 0], 0);
  });

  test('peak EWMA: a slow answer counts at once, fast ones bring it down gradually', () => {
    const [s] = servers(1) as [Server];
    s.state.observeLatency(5, 1000);
    s.state.observeLatency(50, 1001);
    assert.equal(s.state.ewma, 50);
    s.state.observeLatency(5, 2001);
    assert.ok(s.state.ewma > 40 && s.state.ewma < 50, `${s.state.ewma}`);
    for (let t = 3001; t < 60_000; t += 1000) s.state.observeLatency(5, t);
    assert.ok(s.state.ewma < 6);
  });

  test('an unmeasured server takes one request at a time', () => {
    const [s] = servers(1) as [Server];
    assert.equal(s.state.load(0), 0);
    s.state.inFlight = 1;
    assert.ok(s.state.load(0) > 1e6);
  });
});

describe('first', () => {
  test('the first server below its max_in_flight, in order', () => {
    const list = servers(3, 2);
    const balancer = new FirstBalancer();
    balancer.update(list);
    assert.equal(balancer.pick(), list[0]);
    (list[0] as Server).state.inFlight = 2;
    assert.equal(balancer.pick(), list[1]);
    (list[1] as Server).state.inFlight = 2;
    assert.equal(balancer.pick(), list[2]);
  });
});

describe('maglev', () => {
  const keys = (n: number) => Array.from({ length: n }, (_, i) => `http://10.0.0.${i}:80`);
  const lookups = (table: Int32Array, names: readonly string[], count: number): string[] =>
    Array.from({ length: count }, (_, i) => names[table[hashString(`key-${i}`) % table.length] as number] as string);

  test('every slot is owned, in proportion to weight', () => {
    const table = buildTable(keys(3), [1, 1, 2]);
    const counts = [0, 0, 0];
    for (const owner of table) counts[owner] = (counts[owner] as number) + 1;
    assert.equal(counts.reduce((a, b) => a + b), table.length);
    assertNear(
      counts.map((c) => c / table.length),
      [0.25, 0.25, 0.5],
      0.01,
    );
  });

  test('removing or adding one of 10 servers moves little more than a tenth of the keys', () => {
    const ten = keys(10);
    const nine = ten.filter((_, i) => i !== 3);
    const before = lookups(buildTable(ten, new Array(10).fill(1)), ten, 100_000);
    const after = lookups(buildTable(nine, new Array(9).fill(1)), nine, 100_000);
    const moved = before.filter((owner, i) => owner !== after[i]).length / before.length;
    assert.ok(moved < 0.12, `${(moved * 100).toFixed(1)}% moved`);
    const stayers = before.filter((owner) => owner !== ten[3]).length;
    const disturbed = before.filter((owner, i) => owner !== ten[3] && owner !== after[i]).length / stayers;
    assert.ok(disturbed < 0.03, `keys of the other servers mostly stay: ${(disturbed * 100).toFixed(2)}% moved`);
  });

  test('the same servers give the same table', () => {
    const names = keys(5);
    assert.deepEqual(buildTable(names, [1, 1, 1, 1, 1]), buildTable(names, [1, 1, 1, 1, 1]));
  });
});

describe('hash balancer', () => {
  const exchange = (key: string | undefined) => ({ peer: key }) as unknown as Exchange;

  test('the same key, the same server; skip moves on; no key is random', () => {
    const list = servers(5);
    const balancer = new HashBalancer({ hashKey: (ex) => ex.peer as string | undefined, loadFactor: 0 });
    balancer.update(list, [1, 1, 1, 1, 1]);
    const picked = balancer.pick(exchange('10.1.1.1'));
    for (let i = 0; i < 20; i++) assert.equal(balancer.pick(exchange('10.1.1.1')), picked);
    const others = new Set(Array.from({ length: 10 }, (_, skip) => balancer.pick(exchange('10.1.1.1'), skip + 1)));
    assert.ok(others.size >= 3, 'later skips reach other servers');
    assert.ok(new Set(Array.from({ length: 100 }, () => balancer.pick(exchange(undefined)))).size >= 4);
  });
});

describe('request keys', () => {
  test('cookieValue finds a whole cookie name only', () => {
    assert.equal(cookieValue('a=1; session=abc; b=2', 'session'), 'abc');
    assert.equal(cookieValue('session=abc', 'session'), 'abc');
    assert.equal(cookieValue('mysession=x; session = y', 'session'), undefined, 'a name with spaces before = is not it');
    assert.equal(cookieValue('mysession=x;session=y', 'session'), 'y');
    assert.equal(cookieValue('a=1', 'session'), undefined);
    assert.equal(cookieValue(undefined, 'session'), undefined);
  });

  test('queryValue reads one raw parameter', () => {
    assert.equal(queryValue('a=1&id=42&b=2', 'id'), '42');
    assert.equal(queryValue('xid=1&id=2', 'id'), '2');
    assert.equal(queryValue('id', 'id'), '');
    assert.equal(queryValue('id&x=1', 'id'), '');
    assert.equal(queryValue('a=id', 'id'), undefined);
    assert.equal(queryValue('', 'id'), undefined);
  });
});

describe('retry budget', () => {
  test('retries at most ratio × requests (+ the floor) over the window', () => {
    const budget = new RetryBudget(0);
    for (let i = 0; i < 100; i++) budget.deposit(i);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (budget.withdraw(100, 0.2, 0)) allowed++;
    assert.equal(allowed, 20);
    // The floor: min_per_second × 10 s.
    const floor = new RetryBudget(0);
    let granted = 0;
    for (let i = 0; i < 50; i++) if (floor.withdraw(1, 0, 2)) granted++;
    assert.equal(granted, 20);
  });

  test('old requests leave the window', () => {
    const budget = new RetryBudget(0);
    for (let i = 0; i < 1000; i++) budget.deposit(10);
    // 30 s later, with one request a second since: the old thousand no longer count.
    for (let s = 1; s <= 30; s++) budget.deposit(s * 1000);
    assert.equal(budget.withdraw(30_000, 0.2, 0), true);
    assert.equal(budget.withdraw(30_000, 0.2, 0), true);
    assert.equal(budget.withdraw(30_000, 0.2, 0), false);
  });
});

describe('upstream queue', () => {
  const entry = (log: string[], name: string): QueuedRequest => ({
    queuedAt: -1,
    dequeued: () => log.push(`start ${name}`),
    expired: () => log.push(`expire ${name}`),
  });

  test('admits up to max_in_flight, queues up to max_queued, refuses the rest; releases start the oldest', async () => {
    const state = new UpstreamState('u');
    state.attach({ maxInFlight: 1, maxQueued: 2, queueTimeoutMs: 60_000 });
    const log: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => entry(log, n)) as [QueuedRequest, QueuedRequest, QueuedRequest, QueuedRequest];
    assert.equal(state.admit(a, 0), ADMITTED);
    assert.equal(state.admit(b, 0), QUEUED);
    assert.equal(state.admit(c, 0), QUEUED);
    assert.equal(state.admit(d, 0), REJECTED);
    state.cancel(b);
    state.release();
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(log, ['start c']);
    assert.equal(state.inFlight, 1);
    assert.equal(state.queued, 0);
    state.close();
  });

  test('queued requests expire after queue_timeout; close() refuses the rest', async () => {
    const state = new UpstreamState('u');
    state.attach({ maxInFlight: 1, maxQueued: 5, queueTimeoutMs: 20 });
    const log: string[] = [];
    state.admit(entry(log, 'a'), performance.now());
    state.admit(entry(log, 'b'), performance.now());
    const deadline = Date.now() + 2000;
    while (!log.includes('expire b') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(log, ['expire b']);
    state.admit(entry(log, 'c'), performance.now());
    state.close();
    assert.deepEqual(log, ['expire b', 'expire c']);
  });
});

describe('outlier policy', () => {
  const policy: OutlierPolicy = { consecutiveFailures: 3, consecutive5xx: 0, baseEjectionMs: 1000, maxEjectionMs: 5000, maxEjectionPercent: 50, recoveryProbeMs: 100 };

  test('ejection time grows with each ejection, up to the maximum', () => {
    assert.deepEqual([1, 2, 3, 10].map((n) => ejectionTime(policy, n)), [1000, 2000, 3000, 5000]);
  });

  test('the recovery probe backs off with each ejection in a row, never beyond the ejection', () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => recoveryProbeDelay(policy, n, ejectionTime(policy, n))), [100, 200, 400, 800]);
    assert.equal(recoveryProbeDelay(policy, 10, 500), 500);
  });

  test('the cap: a share of the servers, at least one of two or more, never a lone server', () => {
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => ejectionCap(n, 50)), [0, 1, 1, 2, 5]);
    assert.equal(ejectionCap(10, 10), 1);
    assert.equal(ejectionCap(3, 0), 0);
  });

  test('ejection counts decay while the server behaves', () => {
    assert.equal(decayedEjections(3, 4000, policy), 3);
    assert.equal(decayedEjections(3, 10_000, policy), 1);
    assert.equal(decayedEjections(3, 60_000, policy), 0);
  });
});
