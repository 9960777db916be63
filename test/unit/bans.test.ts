/** Ban escalation, expiry, forgetting, and bounded memory (with a fake clock). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BanList, type BanPolicy } from '../../src/middleware/rate-limit/bans.ts';

const policy: BanPolicy = { threshold: 3, window: 10_000, duration: 1_000, factor: 2, maxDuration: 5_000, forgetAfter: 60_000 };

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('threshold violations within the window start a ban, and each ban lasts longer, up to the maximum', () => {
  const c = clock();
  const bans = new BanList(100, c.now);
  assert.equal(bans.violation('a', policy, 'rate_limit'), 0);
  assert.equal(bans.violation('a', policy, 'rate_limit'), 0);
  assert.equal(bans.any, false);
  assert.equal(bans.violation('a', policy, 'rate_limit'), 1_000);
  assert.equal(bans.remaining('a'), 1_000);
  assert.equal(bans.remaining('b'), 0);
  c.advance(1_001);
  assert.equal(bans.remaining('a'), 0, 'the ban ended');
  const lengths: number[] = [];
  for (let round = 0; round < 4; round++) {
    let length = 0;
    while (length === 0) length = bans.violation('a', policy, 'rate_limit');
    lengths.push(length);
    c.advance(length + 1);
  }
  assert.deepEqual(lengths, [2_000, 4_000, 5_000, 5_000]);
});

test('violations spread wider than the window never ban, and good behaviour is forgiven', () => {
  const c = clock();
  const bans = new BanList(100, c.now);
  for (let i = 0; i < 10; i++) {
    assert.equal(bans.violation('a', policy, 'rate_limit'), 0);
    c.advance(6_000);
  }
  bans.violation('b', policy, 'x');
  bans.violation('b', policy, 'x');
  assert.equal(bans.violation('b', policy, 'x'), 1_000);
  c.advance(61_001 + 1_000);
  bans.violation('b', policy, 'x');
  bans.violation('b', policy, 'x');
  assert.equal(bans.violation('b', policy, 'x'), 1_000, 'back to the first length');
});

test('list, lift, manual bans and liftAll', () => {
  const c = clock();
  const bans = new BanList(100, c.now);
  bans.ban('192.0.2.1', 30_000);
  for (let i = 0; i < 3; i++) bans.violation('2001:db8::/64', policy, 'connection_limit');
  const listed = bans.list();
  assert.deepEqual(
    listed.map((b) => [b.client, b.reason, b.remaining_s]),
    [
      ['2001:db8::/64', 'connection_limit', 1],
      ['192.0.2.1', 'admin', 30],
    ],
  );
  assert.equal(bans.lift('192.0.2.1'), true);
  assert.equal(bans.lift('192.0.2.1'), false);
  assert.equal(bans.liftAll(), 1);
  assert.equal(bans.any, false);
});

test('memory is bounded: a flood of addresses keeps at most maxEntries records', () => {
  const c = clock();
  const bans = new BanList(1_000, c.now);
  const tight = { ...policy, threshold: 1 };
  for (let i = 0; i < 20_000; i++) bans.violation(`10.0.${i >> 8}.${i & 255}`, tight, 'x');
  assert.ok(bans.list().length <= 1_000);
  assert.ok(bans.remaining('10.0.78.31') > 0, 'the most recent are kept');
});

test('memory is bounded for violations told by other threads too: the oldest records are pushed out', () => {
  const c = clock();
  const bans = new BanList(100, c.now);
  bans.apply({ op: 'violation', key: 'first', at: c.now(), policy });
  bans.apply({ op: 'violation', key: 'first', at: c.now(), policy });
  for (let i = 0; i < 200; i++) bans.apply({ op: 'violation', key: `10.0.0.${i}`, at: c.now(), policy });
  // Kept, the two violations told would make this third one a ban.
  assert.equal(bans.violation('first', policy, 'x'), 0, 'its record was pushed out by newer ones');
  bans.apply({ op: 'violation', key: 'second', at: c.now(), policy });
  bans.apply({ op: 'violation', key: 'second', at: c.now(), policy });
  assert.equal(bans.violation('second', policy, 'x'), 1_000, 'a recent record is kept');
});

test('threads: violations seen on two threads count towards one threshold; the ban, and its escalation, reach both; nothing is echoed', () => {
  const c = clock();
  const a = new BanList(100, c.now);
  const b = new BanList(100, c.now);
  const sent: string[] = [];
  a.publish = (change) => (sent.push(`a:${change.op}`), b.apply(change));
  b.publish = (change) => (sent.push(`b:${change.op}`), a.apply(change));
  assert.equal(a.violation('x', policy, 'rate_limit'), 0);
  assert.equal(b.violation('x', policy, 'rate_limit'), 0);
  assert.equal(a.violation('x', policy, 'rate_limit'), 1_000, 'the third violation in total bans, though a saw two');
  assert.equal(b.remaining('x'), 1_000, 'the ban reached the other thread');
  assert.deepEqual(sent, ['a:violation', 'b:violation', 'a:violation', 'a:ban'], 'applied changes are not published again');
  assert.equal(a.issued + b.issued, 1, 'one ban, counted once');
  c.advance(1_001);
  // The next ban, made by the other thread, is the second level's.
  let length = 0;
  for (let i = 0; i < 3 && length === 0; i++) length = b.violation('x', policy, 'rate_limit');
  assert.equal(length, 2_000);
  assert.equal(a.remaining('x'), 2_000);
  b.lift('x');
  assert.equal(a.remaining('x'), 0, 'a lift reaches the other thread');
});
