import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pool } from 'undici';
import { RoundRobinBalancer } from '../../src/upstream/balancers/round-robin.ts';
import { Server } from '../../src/upstream/server.ts';

function servers(weights: number[]): Server[] {
  return weights.map((w, i) => new Server(new URL(`http://10.0.0.${i + 1}:80`), w, null as unknown as Pool, `k${i}`));
}

function sequence(weights: number[], n: number): string {
  const balancer = new RoundRobinBalancer(servers(weights));
  return Array.from({ length: n }, () => balancer.pick()?.hostname.slice(-1)).join('');
}

test('equal weights rotate in order', () => {
  assert.equal(sequence([1, 1, 1], 7), '1231231');
});

test('weights are smooth, as in nginx: 5,1,1 gives no bursts', () => {
  assert.equal(sequence([5, 1, 1], 7), '1121311');
});

test('over many picks each server gets its weight share exactly', () => {
  const picks = sequence([3, 2, 5], 1000);
  const count = (c: string) => [...picks].filter((x) => x === c).length;
  assert.deepEqual([count('1'), count('2'), count('3')], [300, 200, 500]);
});

test('a single server is always picked; none gives undefined', () => {
  assert.equal(sequence([4], 3), '111');
  assert.equal(new RoundRobinBalancer([]).pick(), undefined);
});
