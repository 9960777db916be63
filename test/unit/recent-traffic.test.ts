/** The dashboard's traffic aggregates: latency buckets, the per-second ring, merging workers' windows, percentiles. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeWindows, summarize } from '../../src/admin/live.ts';
import type { Exchange } from '../../src/core/exchange.ts';
import { bucketUpperMs, LATENCY_BUCKETS, latencyBucket, TRAFFIC_SECONDS, TrafficRecorder, type TrafficWindow } from '../../src/core/recent-traffic.ts';

const sum = (a: Uint32Array): number => a.reduce((x, y) => x + y, 0);

function exchange(status: number, errorCode?: string, client = '192.0.2.1'): Exchange {
  return {
    status,
    errorCode,
    client,
    startedAt: performance.now() - 2,
    elapsedMs: () => 2,
    req: { url: '/path' },
    info: { method: 'GET' },
    route: { name: 'r', action: { kind: 'respond' } },
    server: undefined,
  } as unknown as Exchange;
}

test('latency buckets: monotone, each bound above the durations it holds, four per doubling', () => {
  let previous = 0;
  for (let ms = 0.01; ms < 200_000; ms *= 1.07) {
    const bucket = latencyBucket(ms);
    assert.ok(bucket >= previous);
    previous = bucket;
    if (bucket < LATENCY_BUCKETS - 1) assert.ok(bucketUpperMs(bucket) >= ms * 0.9999, `${ms} ms in bucket ${bucket}`);
    if (bucket > 0 && bucket < LATENCY_BUCKETS - 1) assert.ok(bucketUpperMs(bucket - 1) < ms, `${ms} ms belongs no lower`);
  }
  assert.equal(latencyBucket(-1), 0);
  assert.equal(latencyBucket(Number.NaN), 0);
  assert.equal(latencyBucket(1e12), LATENCY_BUCKETS - 1);
  assert.ok(Math.abs(bucketUpperMs(4) / bucketUpperMs(0) - 2) < 1e-9);
});

test('the recorder counts requests, 5xx answers, recent errors and refused clients, second by second', (t) => {
  const recorder = new TrafficRecorder();
  t.after(() => recorder.close());
  for (let i = 0; i < 5; i++) recorder.record(exchange(200));
  recorder.record(exchange(502, 'CONNECT_FAILED'));
  recorder.record(exchange(403, 'FORBIDDEN', '203.0.113.9'));
  recorder.record(exchange(429, 'TOO_MANY_REQUESTS', '203.0.113.9'));
  recorder.record(exchange(429, 'TOO_MANY_REQUESTS', '198.51.100.1'));
  // A backend's own 403 is not a refusal by Gatehouse.
  recorder.record(exchange(403));
  const now = Math.floor(Date.now() / 1000);
  recorder.roll(now + 2);
  const window = recorder.window();
  assert.equal(window.end, now + 1);
  assert.equal(sum(window.requests), 10);
  assert.equal(sum(window.errors), 1);
  assert.equal(sum(window.latency), 10);
  const second = window.requests.indexOf(10);
  assert.equal(window.latency[second * LATENCY_BUCKETS + latencyBucket(2)], 10, 'each request in its duration\'s bucket, in its second\'s row');
  assert.equal(window.recentErrors.length, 1);
  assert.deepEqual({ ...window.recentErrors[0], time: 0 }, { time: 0, status: 502, method: 'GET', path: '/path', route: 'r', upstream: null, server: null, code: 'CONNECT_FAILED' });
  assert.deepEqual(window.refused, [
    { client: '203.0.113.9', denied: 1, limited: 1 },
    { client: '198.51.100.1', denied: 0, limited: 1 },
  ]);
  // The next seconds start from zero; a minute later everything has left the window.
  recorder.record(exchange(200));
  recorder.roll(now + 3);
  const next = recorder.window();
  assert.equal(next.requests[TRAFFIC_SECONDS - 1], 1);
  assert.equal(sum(next.requests), 11);
  recorder.roll(now + 3 + TRAFFIC_SECONDS);
  assert.equal(sum(recorder.window().requests), 0);
});

test('the recent errors keep the last twenty', (t) => {
  const recorder = new TrafficRecorder();
  t.after(() => recorder.close());
  for (let i = 0; i < 25; i++) recorder.record(exchange(500 + (i % 5)));
  const errors = recorder.window().recentErrors;
  assert.equal(errors.length, 20);
  assert.equal(errors.at(-1)?.status, 504);
});

function window(end: number, fill: (requests: Uint32Array, latency: Uint32Array) => void): TrafficWindow {
  const requests = new Uint32Array(TRAFFIC_SECONDS);
  const latency = new Uint32Array(TRAFFIC_SECONDS * LATENCY_BUCKETS);
  fill(requests, latency);
  return { end, requests, errors: new Uint32Array(TRAFFIC_SECONDS), latency, recentErrors: [], refused: [{ client: 'a', denied: 1, limited: 0 }] };
}

test('workers\' windows merge by second, and percentiles come from the merged histograms', () => {
  const last = TRAFFIC_SECONDS - 1;
  // Worker a has closed second 101; worker b is a second behind: its last second is 100.
  const a = window(101, (r, l) => {
    r[last] = 10;
    l[last * LATENCY_BUCKETS + 10] = 10;
  });
  const b = window(100, (r, l) => {
    r[last] = 90;
    l[last * LATENCY_BUCKETS + 20] = 90;
  });
  const merged = mergeWindows([a, b]);
  assert.equal(merged.end, 101);
  assert.equal(merged.requests[last], 10);
  assert.equal(merged.requests[last - 1], 90);
  assert.deepEqual(merged.refused, [{ client: 'a', denied: 2, limited: 0 }]);
  const both = mergeWindows([a, window(101, (r, l) => {
    r[last] = 90;
    l[last * LATENCY_BUCKETS + 20] = 90;
  })]);
  const summary = summarize(both) as { p50: (number | null)[]; p99: (number | null)[]; now: { rps: number; p50: number; p90: number; p99: number } };
  assert.equal(summary.now.rps, 100);
  // 10 requests in bucket 10 (0.4 ms), 90 in bucket 20 (3.2 ms): the median is in the slower one.
  assert.equal(summary.now.p50, Math.round(bucketUpperMs(20) * 100) / 100);
  assert.equal(summary.p50[last], summary.now.p50);
  assert.equal(summary.p50[0], null, 'no requests, no percentile');
  const none = mergeWindows([]);
  assert.ok(Number.isInteger(none.end) && sum(none.requests) === 0, 'no worker answered: an empty minute');
});

test('refused clients are counted over the current and the previous minute, then forgotten', (t) => {
  const recorder = new TrafficRecorder();
  t.after(() => recorder.close());
  const minute = (Math.floor(Date.now() / 60_000) + 1) * 60;
  recorder.record(exchange(403, 'FORBIDDEN', '203.0.113.9'));
  recorder.roll(minute);
  recorder.record(exchange(429, 'TOO_MANY_REQUESTS', '203.0.113.9'));
  for (let i = 0; i < 3; i++) recorder.record(exchange(429, 'TOO_MANY_REQUESTS', '198.51.100.1'));
  // Both minutes, one client's counts added up, the most refused first.
  assert.deepEqual(recorder.window().refused, [
    { client: '198.51.100.1', denied: 0, limited: 3 },
    { client: '203.0.113.9', denied: 1, limited: 1 },
  ]);
  recorder.roll(minute + 60);
  assert.deepEqual(recorder.window().refused, [
    { client: '198.51.100.1', denied: 0, limited: 3 },
    { client: '203.0.113.9', denied: 0, limited: 1 },
  ]);
  // Two minutes later (no minute in between counted), nothing is left.
  recorder.roll(minute + 180);
  assert.deepEqual(recorder.window().refused, []);
});

test('merged windows keep the twenty latest errors and the ten most refused clients', () => {
  const windows = [0, 1].map((w): TrafficWindow => ({
    ...window(100, () => {}),
    recentErrors: Array.from({ length: 15 }, (_, i) => ({ time: i * 2 + w, status: 500, method: 'GET', path: '/', route: null, upstream: null, server: null, code: null })),
    refused: Array.from({ length: 8 }, (_, i) => ({ client: `192.0.2.${w * 4 + i}`, denied: i, limited: 0 })),
  }));
  const merged = mergeWindows(windows);
  assert.deepEqual(merged.recentErrors.map((e) => e.time), Array.from({ length: 20 }, (_, i) => i + 10));
  assert.equal(merged.refused.length, 10);
  // 192.0.2.4 to .7 are in both windows: their counts add up.
  assert.deepEqual(merged.refused[0], { client: '192.0.2.7', denied: 10, limited: 0 });
});
