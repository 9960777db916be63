/** compileSnapshot and retireSnapshot: what a snapshot takes from the registry, it gives back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileSnapshot, retireSnapshot } from '../../src/config/compile.ts';
import { configFromObject } from '../../src/config/load.ts';
import { Registry } from '../../src/core/registry.ts';

test('a retired snapshot holds nothing in the registry: every route kind, named or not, with metrics on', () => {
  const registry = new Registry();
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    admin: { address: '127.0.0.1:0', metrics: true },
    upstreams: {
      app: { servers: [{ url: 'http://127.0.0.1:1' }] },
      eu: { servers: [{ url: 'http://127.0.0.1:2' }] },
    },
    gslb: { g: { default_region: 'eu', regions: { eu: { upstream: 'eu', continents: ['EU'] } } } },
    routes: [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'app' },
      { match: { path_prefix: '/geo' }, gslb: 'g' },
      { match: { path: '/old' }, redirect: { to: '/new' } },
      { name: 'api', match: { path: '/health' }, respond: { status: 200 } },
      { match: {}, upstream: 'app' },
    ],
  });
  const first = compileSnapshot(config, registry);
  assert.ok(registry.sharedCount > 0, 'the snapshot holds shared state');
  // A reload: the next snapshot is compiled beside the running one, which is then retired.
  const second = compileSnapshot(config, registry);
  const held = registry.sharedCount;
  retireSnapshot(first, registry);
  assert.equal(registry.sharedCount, held, 'the running snapshot keeps what it shares with the retired one');
  retireSnapshot(second, registry);
  assert.equal(registry.sharedCount, 0);
  assert.equal(registry.poolCount, 0);
});
