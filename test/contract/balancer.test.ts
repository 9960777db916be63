/**
 * The Balancer contract: every balancer registered in src/upstream/balancers/index.ts must pass
 * this suite. Balancers are driven directly, as Upstream drives them: update() with the servers
 * that take traffic, then pick().
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Pool } from 'undici';
import type { Exchange } from '../../src/core/exchange.ts';
import type { Balancer } from '../../src/upstream/balancers/balancer.ts';
import { BALANCERS } from '../../src/upstream/balancers/index.ts';
import { Server } from '../../src/upstream/server.ts';

function servers(count: number): Server[] {
  return Array.from({ length: count }, (_, i) => new Server(new URL(`http://10.0.1.${i + 1}:8080`), 1, null as unknown as Pool, `k${i}`));
}

/** A request with its own key for key-based balancers (client IP, here). */
function request(i: number): Exchange {
  return { peer: `192.0.2.${i % 250}`, req: { headers: {}, url: '/' }, info: { path: '/', rawQuery: '' } } as unknown as Exchange;
}

function make(name: string): Balancer {
  const factory = BALANCERS[name];
  assert.ok(factory !== undefined);
  return factory({ hashKey: (ex) => ex.peer, loadFactor: 0 });
}

for (const name of Object.keys(BALANCERS)) {
  describe(`balancer contract: ${name}`, () => {
    test('no server: pick gives undefined', () => {
      const balancer = make(name);
      assert.equal(balancer.pick(request(0)), undefined);
      balancer.update([], []);
      assert.equal(balancer.pick(request(0)), undefined);
      assert.equal(balancer.pick(), undefined, 'also without a request');
    });

    test('one server: always that one', () => {
      const balancer = make(name);
      const [only] = servers(1);
      balancer.update([only as Server], [1]);
      for (let i = 0; i < 20; i++) assert.equal(balancer.pick(request(i), i % 3), only);
    });

    test('picks only among the servers of the last update', () => {
      const balancer = make(name);
      const all = servers(4);
      balancer.update(all, [1, 1, 1, 1]);
      const kept = all.slice(1, 3);
      balancer.update(kept, [1, 3]);
      for (let i = 0; i < 200; i++) {
        const picked = balancer.pick(request(i), i % 2);
        assert.ok(picked !== undefined && kept.includes(picked), `picked ${picked?.origin}`);
      }
    });

    test('works without a request and with any skip', () => {
      const balancer = make(name);
      const all = servers(3);
      balancer.update(all, [1, 2, 3]);
      for (let skip = 0; skip < 10; skip++) assert.ok(all.includes(balancer.pick(undefined, skip) as Server));
    });

    test('idle servers all get traffic from varied requests (first: only the first)', () => {
      const balancer = make(name);
      const all = servers(3);
      balancer.update(all, [1, 1, 1]);
      const seen = new Set<Server | undefined>();
      for (let i = 0; i < 300; i++) seen.add(balancer.pick(request(i)));
      assert.equal(seen.size, name === 'first' ? 1 : 3);
    });

    test('peek names a server of the last update, or none, without a request too', () => {
      const balancer = make(name);
      assert.equal(balancer.peek(request(0)), undefined);
      const all = servers(3);
      balancer.update(all, [1, 2, 3]);
      for (let i = 0; i < 20; i++) assert.ok(all.includes(balancer.peek(i % 2 === 0 ? request(i) : undefined) as Server));
    });

    // The balancers whose choice is not random: peek tells the next pick, and changes none.
    if (['round_robin', 'first', 'hash'].includes(name)) {
      test('peek is the next pick, and the picks after it are those without it', () => {
        const peeked = make(name);
        const plain = make(name);
        const all = servers(3);
        for (const [weights, label] of [[[1, 1, 1], 'equal'], [[5, 1, 2], 'weighted']] as const) {
          peeked.update(all, weights);
          plain.update(all, weights);
          for (let i = 0; i < 30; i++) {
            const next = peeked.peek(request(i));
            assert.equal(peeked.peek(request(i)), next, `${label}: a second peek sees the same`);
            const picked = peeked.pick(request(i));
            assert.equal(picked, next, `${label}: pick ${i} is what peek said`);
            assert.equal(picked, plain.pick(request(i)), `${label}: pick ${i} as without peeks`);
          }
        }
      });
    }
  });
}
