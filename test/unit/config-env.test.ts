/** Environment references in configuration files: ${VAR}, ${VAR:-default}, $${, types, and where an unset one is. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDocument } from 'yaml';
import { expandEnvironment } from '../../src/config/env.ts';
import { parseConfigText } from '../../src/config/load.ts';
import type { ConfigError } from '../../src/core/errors.ts';

const expand = (text: string, env: Record<string, string>): { value: unknown; problems: string[] } => {
  const doc = parseDocument(text);
  const problems = expandEnvironment(doc, env).map((p) => p.message);
  return { value: doc.toJS(), problems };
};

test('values are expanded; defaults apply when unset or empty; keys are left alone; $${ is a literal ${', () => {
  const { value, problems } = expand(
    ['a: ${HOST}:${PORT}', 'b: ${MISSING:-fallback}', 'c: ${EMPTY:-was empty}', 'd: "$${NOT}"', '${KEY}: kept', 'e:', '  - x-${HOST}'].join('\n'),
    { HOST: '127.0.0.1', PORT: '19200', EMPTY: '' },
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(value, { a: '127.0.0.1:19200', b: 'fallback', c: 'was empty', d: '${NOT}', '${KEY}': 'kept', e: ['x-127.0.0.1'] });
});

test('a plain value that is one reference takes its YAML type; a quoted one stays a string', () => {
  const { value } = expand(['n: ${N}', 'q: "${N}"', 'b: ${B:-true}', 's: ${S}'].join('\n'), { N: '20', S: 'text' });
  assert.deepEqual(value, { n: 20, q: '20', b: true, s: 'text' });
});

test('an unset variable without a default is an error at its file:line:col', () => {
  delete process.env.GATEHOUSE_TEST_UNSET;
  const text = ['listen:', '  - address: ${GATEHOUSE_TEST_UNSET}', 'routes: []'].join('\n');
  assert.throws(
    () => parseConfigText(text, 'gh.yaml'),
    (error: Error) => {
      assert.equal(error.message, 'gh.yaml:2:14: environment variable GATEHOUSE_TEST_UNSET is not set (write ${GATEHOUSE_TEST_UNSET:-default} to give a default)');
      // The located problem too: the admin API's validate answers with these.
      assert.deepEqual((error as ConfigError).problems, [
        { line: 2, column: 14, path: '', message: 'environment variable GATEHOUSE_TEST_UNSET is not set (write ${GATEHOUSE_TEST_UNSET:-default} to give a default)' },
      ]);
      return true;
    },
  );
});

test('a configuration takes its listener and Redis URL from the environment', () => {
  process.env.GATEHOUSE_TEST_LISTEN = '127.0.0.1:19333';
  const config = parseConfigText(
    ['listen:', '  - address: ${GATEHOUSE_TEST_LISTEN:-127.0.0.1:19200}', 'state:', '  redis:', '    url: ${GATEHOUSE_TEST_REDIS:-redis://127.0.0.1:6379}'].join('\n'),
    'gh.yaml',
  );
  assert.equal(config.listen[0]?.address, '127.0.0.1:19333');
  assert.equal(config.state.redis?.url, 'redis://127.0.0.1:6379');
  delete process.env.GATEHOUSE_TEST_LISTEN;
});

test('examples/redis.yaml: listener and Redis from the environment, 20 per 10 s per client on every route', async () => {
  const { loadConfigFile } = await import('../../src/config/load.ts');
  const file = new URL('../../examples/redis.yaml', import.meta.url).pathname;
  delete process.env.GATEHOUSE_LISTEN;
  delete process.env.REDIS_URL;
  const byDefault = await loadConfigFile(file);
  assert.equal(byDefault.listen[0]?.address, '127.0.0.1:19200');
  assert.equal(byDefault.state.redis?.url, 'redis://127.0.0.1:6379');
  assert.equal(byDefault.upstreams.app?.servers[0]?.url, 'http://127.0.0.1:19201');
  const limit = byDefault.routes[0]?.rate_limits?.[0];
  assert.deepEqual({ interval: limit?.rate, burst: limit?.burst }, { interval: 500, burst: 19 });
  process.env.GATEHOUSE_LISTEN = '127.0.0.1:19202';
  process.env.REDIS_URL = 'redis://10.1.2.3:6380/2';
  try {
    const second = await loadConfigFile(file);
    assert.equal(second.listen[0]?.address, '127.0.0.1:19202');
    assert.equal(second.state.redis?.url, 'redis://10.1.2.3:6380/2');
  } finally {
    delete process.env.GATEHOUSE_LISTEN;
    delete process.env.REDIS_URL;
  }
});

test('state.redis: exactly one of url, sentinels or cluster; Sentinel needs its master name; a redis cache store needs state.redis', async () => {
  const { errorOf, yaml } = await import('../helpers/config.ts');
  const LISTEN = 'listen: [{ address: ":0" }]';
  assert.equal(errorOf(yaml(LISTEN, 'state: { redis: { key_prefix: x } }')), 'gatehouse.yaml:2:17 state.redis: give exactly one of url, sentinels or cluster');
  assert.equal(
    errorOf(yaml(LISTEN, 'state: { redis: { url: "redis://a:1", cluster: ["b:2"] } }')),
    'gatehouse.yaml:2:17 state.redis: give exactly one of url, sentinels or cluster',
  );
  assert.equal(errorOf(yaml(LISTEN, 'state: { redis: { sentinels: ["s:26379"] } }')), 'gatehouse.yaml:2:17 state.redis.name: Sentinel needs the master name');
  assert.equal(errorOf(yaml(LISTEN, 'state: { redis: { url: "http://x" } }')), 'gatehouse.yaml:2:24 state.redis.url: must be a redis:// or rediss:// URL');
  assert.equal(errorOf(yaml(LISTEN, 'state: { redis: { cluster: [":7000"] } }')), 'gatehouse.yaml:2:29 state.redis.cluster[0]: must be "host:port"');
  assert.equal(
    errorOf(yaml(LISTEN, 'cache: { stores: { shared: { type: redis } } }')),
    'gatehouse.yaml:2:36 cache.stores.shared.type: a redis store needs state.redis (docs/scaling.md)',
  );
});
