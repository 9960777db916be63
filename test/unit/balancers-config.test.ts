/** Configuration of balancing, health, retries and circuit breaking: defaults and errors with file:line:col. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { errorOf, yaml } from '../helpers/config.ts';

/** An upstream "app" with two servers and these extra lines (indented under it). */
function upstream(...lines: string[]): string {
  return yaml(
    'listen: [{ address: ":0" }]',
    'upstreams:',
    '  app:',
    '    servers:',
    '      - url: http://127.0.0.1:3000',
    '      - url: http://127.0.0.1:3001',
    ...lines.map((l) => `    ${l}`),
  );
}

describe('defaults', () => {
  test('health_check, hash and sticky fill their defaults when present', () => {
    const config = parseConfigText(upstream('balance: hash', 'hash: {}', 'health_check: {}', 'sticky: {}'), 'gatehouse.yaml');
    const app = config.upstreams['app'];
    assert.deepEqual(app?.hash, { key: 'client_ip', load_factor: 0 });
    assert.deepEqual(app?.health_check, {
      type: 'http',
      method: 'GET',
      path: '/',
      expect_status: [[200, 399]],
      interval: 5000,
      jitter: 0.1,
      timeout: 2000,
      rise: 2,
      fall: 3,
    });
    assert.deepEqual(app?.sticky, { cookie: 'gh_sticky', same_site: 'Lax' });
  });

  test('statuses and ranges, durations with units, retry conditions with statuses', () => {
    const config = parseConfigText(
      upstream(
        'health_check: { expect_status: [200, "300-302"], interval: 1s, timeout: 500ms }',
        'retries: { retry_on: [connect_failure, timeout, 503], deadline: 10s, budget: { percent: 5 } }',
        'circuit_breaker: { max_in_flight: 10, queue_timeout: 2s }',
      ),
      'gatehouse.yaml',
    );
    const app = config.upstreams['app'];
    assert.deepEqual(app?.health_check?.expect_status, [
      [200, 200],
      [300, 302],
    ]);
    assert.deepEqual(app?.retries.retry_on, ['connect_failure', 'timeout', 503]);
    assert.equal(app?.retries.deadline, 10_000);
    assert.deepEqual(app?.retries.budget, { percent: 5, min_per_second: 10 });
    assert.deepEqual(app?.circuit_breaker, { max_in_flight: 10, max_queued: 0, queue_timeout: 2000 });
  });
});

describe('errors point at the field', () => {
  test('an unknown balancer', () => {
    assert.equal(
      errorOf(upstream('balance: fastest')),
      'gatehouse.yaml:7:14 upstreams.app.balance: must be one of round_robin, least_conn, p2c, hash, random, first (got "fastest")',
    );
  });

  test('the same server twice', () => {
    const message = errorOf(
      yaml('listen: [{ address: ":0" }]', 'upstreams:', '  app:', '    servers:', '      - url: http://127.0.0.1:3000', '      - url: http://127.0.0.1:3000/'),
    );
    assert.equal(message, 'gatehouse.yaml:6:14 upstreams.app.servers[1].url: the same server as servers[0] (http://127.0.0.1:3000)');
  });

  test('only backups', () => {
    const message = errorOf(yaml('listen: [{ address: ":0" }]', 'upstreams:', '  app:', '    servers:', '      - { url: http://127.0.0.1:3000, backup: true }'));
    assert.equal(message, 'gatehouse.yaml:5:7 upstreams.app.servers: at least one server must not be a backup');
  });

  test('a health check timeout longer than its interval, a bad status range, body on a tcp check', () => {
    assert.equal(
      errorOf(upstream('health_check: { interval: 1s, timeout: 2s }')),
      'gatehouse.yaml:7:44 upstreams.app.health_check.timeout: must not be longer than the interval (1000 ms)',
    );
    assert.equal(
      errorOf(upstream('health_check: { expect_status: ["299-200"] }')),
      'gatehouse.yaml:7:37 upstreams.app.health_check.expect_status[0]: "299-200" is not a status or a range such as 200 or "200-399"',
    );
    assert.match(errorOf(upstream('health_check: { type: tcp, expect_body: ok }')), /health_check\.expect_body: only applies to type: http$/);
  });

  test('retry conditions, attempts, hash settings', () => {
    assert.match(errorOf(upstream('retries: { retry_on: [refused] }')), /retries\.retry_on\[0\]: must be connect_failure, reset, timeout or a 5xx status such as 503$/);
    assert.match(errorOf(upstream('retries: { retry_on: [404] }')), /retries\.retry_on\[0\]: must be connect_failure/);
    assert.match(errorOf(upstream('retries: { attempts: 0 }')), /retries\.attempts: /);
    assert.match(errorOf(upstream('balance: hash', 'hash: { key: header }')), /hash\.name: key: header needs a name$/);
    assert.match(errorOf(upstream('hash: { key: path }')), /upstreams\.app\.hash: only applies to balance: hash$/);
    assert.match(errorOf(upstream('balance: hash', 'hash: { key: path, load_factor: 0.5 }')), /load_factor: must be 0 \(no bound\) or at least 1$/);
  });

  test('outlier detection and sticky settings', () => {
    assert.match(
      errorOf(upstream('outlier_detection: { base_ejection_time: 1m, max_ejection_time: 30s }')),
      /outlier_detection\.max_ejection_time: must not be shorter than base_ejection_time$/,
    );
    assert.match(errorOf(upstream('sticky: { secret: short }')), /sticky\.secret: must be at least 16 characters$/);
    assert.match(errorOf(upstream('sticky: { cookie: "a b" }')), /sticky\.cookie: is not a valid cookie name$/);
  });
});
