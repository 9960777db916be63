/** diffConfigs: what a reload changes, by name. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changeLines, diffConfigs } from '../../src/config/diff.ts';
import { configFromObject } from '../../src/config/load.ts';

const before = configFromObject(
  {
    listen: [{ address: '127.0.0.1:8080' }],
    upstreams: {
      app: { servers: [{ url: 'http://127.0.0.1:3000' }, { url: 'http://127.0.0.1:3001' }] },
      old: { servers: [{ url: 'http://127.0.0.1:4000' }] },
    },
    routes: [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'app' },
      { name: 'legacy', match: { path_prefix: '/old' }, upstream: 'old' },
      { match: {}, upstream: 'app' },
    ],
  },
  'before',
);

test('the same configuration changes nothing', () => {
  assert.deepEqual(diffConfigs(before, before), {
    routes: { added: [], removed: [], changed: [] },
    upstreams: { added: [], removed: [], changed: [] },
    servers: { added: [], removed: [], changed: [] },
    settings: [],
  });
});

test('routes, upstreams and servers added, removed and changed, by name', () => {
  const after = configFromObject(
    {
      listen: [{ address: '127.0.0.1:8080' }],
      access_log: { format: 'combined' },
      upstreams: {
        app: { balance: 'least_conn', servers: [{ url: 'http://127.0.0.1:3000', weight: 3 }, { url: 'http://127.0.0.1:3002' }] },
        new: { servers: [{ url: 'http://127.0.0.1:5000' }] },
      },
      routes: [
        { name: 'api', match: { path_prefix: '/v2' }, upstream: 'app' },
        { name: 'fresh', match: { path_prefix: '/new' }, upstream: 'new' },
        { match: {}, upstream: 'app' },
      ],
    },
    'after',
  );
  assert.deepEqual(diffConfigs(before, after), {
    routes: { added: ['fresh'], removed: ['legacy'], changed: ['api'] },
    upstreams: { added: ['new'], removed: ['old'], changed: ['app'] },
    servers: {
      added: ['app http://127.0.0.1:3002', 'new http://127.0.0.1:5000'],
      removed: ['app http://127.0.0.1:3001', 'old http://127.0.0.1:4000'],
      changed: ['app http://127.0.0.1:3000'],
    },
    settings: ['access_log'],
  });
});

test('an upstream whose only change is its server list is not itself changed; unnamed routes go by place', () => {
  const after = configFromObject(
    {
      listen: [{ address: '127.0.0.1:8080' }, { address: '127.0.0.1:8081' }],
      upstreams: {
        app: { servers: [{ url: 'http://127.0.0.1:3000' }] },
        old: { servers: [{ url: 'http://127.0.0.1:4000' }] },
      },
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'app' },
        { name: 'legacy', match: { path_prefix: '/old' }, upstream: 'old' },
        { match: {}, upstream: 'app' },
        { match: {}, respond: { status: 404 } },
      ],
    },
    'after',
  );
  const diff = diffConfigs(before, after);
  assert.deepEqual(diff.upstreams, { added: [], removed: [], changed: [] });
  assert.deepEqual(diff.servers.removed, ['app http://127.0.0.1:3001']);
  assert.deepEqual(diff.routes, { added: ['route-3'], removed: [], changed: [] });
  assert.deepEqual(diff.settings, ['listen']);
});

test('changeLines: one line per change, routes, upstreams, servers, then settings', () => {
  const after = configFromObject(
    {
      listen: [{ address: '127.0.0.1:8081' }],
      upstreams: { app: { servers: [{ url: 'http://127.0.0.1:3000', weight: 2 }], balance: 'least_conn' }, new: { servers: [{ url: 'http://127.0.0.1:5000' }] } },
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'new' },
        { match: {}, upstream: 'app' },
      ],
    },
    'after',
  );
  assert.deepEqual(changeLines(diffConfigs(before, after)), [
    'route added: route-1',
    'route removed: legacy',
    'route removed: route-2',
    'route changed: api',
    'upstream added: new',
    'upstream removed: old',
    'upstream changed: app',
    'server added: new http://127.0.0.1:5000',
    'server removed: app http://127.0.0.1:3001',
    'server removed: old http://127.0.0.1:4000',
    'server changed: app http://127.0.0.1:3000',
    'setting changed: listen',
  ]);
  assert.deepEqual(changeLines(diffConfigs(before, before)), []);
});
