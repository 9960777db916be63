import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../../src/core/tracing/ids.ts';
import { formatTraceparent, parseTraceparent } from '../../src/core/tracing/trace-context.ts';
import { Histogram, LATENCY_BUCKETS, statusClass } from '../../src/core/metrics/traffic.ts';

test('traceparent: version 00 parsed; malformed values refused (W3C Trace Context level 1)', () => {
  assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    parentId: '00f067aa0ba902b7',
    flags: 1,
  });
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03')?.flags, 3);
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-f9')?.flags, 0xf9);
  // A later version: the first four fields, more after a dash.
  assert.equal(parseTraceparent('cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds')?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  for (const bad of [
    undefined,
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    '',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-',
    'cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b/-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A',
    '0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  ]) {
    assert.equal(parseTraceparent(bad), null, String(bad));
  }
  assert.equal(formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', true), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  assert.equal(formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', false).slice(-2), '00');
});

test('ids: lowercase hex of the asked length, different each time, across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const id = randomHex(16);
    assert.match(id, /^[0-9a-f]{32}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 3000);
  assert.match(randomHex(8), /^[0-9a-f]{16}$/);
});

test('latency histogram: bucket by upper bound (le), +Inf beyond the last; status classes', () => {
  const h = new Histogram();
  h.observe(0.001);
  h.observe(0.0011);
  h.observe(100);
  assert.equal(h.counts[0], 1, '0.001 is within le=0.001');
  assert.equal(h.counts[1], 1);
  assert.equal(h.counts[LATENCY_BUCKETS.length], 1);
  assert.equal(h.count, 3);
  assert.ok(Math.abs(h.sum - 100.0021) < 1e-9);
  assert.deepEqual([0, 101, 200, 304, 499, 503, 600].map(statusClass), [0, 1, 2, 3, 4, 5, 0]);
});
