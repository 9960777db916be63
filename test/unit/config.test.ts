/** parseConfigText: defaults filled in, and every error as `file:line:col path: what is wrong`. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { errorOf, yaml } from '../helpers/config.ts';

describe('a valid configuration', () => {
  test('the smallest useful file gets every default', () => {
    const config = parseConfigText(
      yaml(
        'listen:',
        '  - address: 127.0.0.1:8080', //
        'upstreams:',
        '  app:',
        '    servers:',
        '      - url: http://127.0.0.1:3000',
        'routes:',
        '  - match: { path_prefix: /api }',
        '    upstream: app',
      ),
      'gatehouse.yaml',
    );
    assert.deepEqual(config.listen, [
      {
        address: '127.0.0.1:8080',
        proxy_protocol: false,
        max_connections: 0,
        http2: {
          enabled: true,
          max_concurrent_streams: 100,
          initial_window_size: 262144,
          max_session_memory: 16777216,
          max_premature_resets: 100,
          send_timeout: 30000,
        },
        h2c: false,
        redirect_https: false,
        hsts: false,
      },
    ]);
    assert.deepEqual(config.upstreams.app, {
      servers: [{ url: 'http://127.0.0.1:3000', weight: 1, backup: false, drain: false, max_in_flight: 0 }],
      balance: 'round_robin',
      slow_start: 0,
      outlier_detection: {
        enabled: true,
        consecutive_failures: 3,
        consecutive_5xx: 0,
        base_ejection_time: 30_000,
        max_ejection_time: 300_000,
        max_ejection_percent: 50,
        recovery_probe_interval: 1000,
      },
      retries: {
        attempts: 3,
        retry_on: ['connect_failure', 'reset'],
        idempotent_methods: ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'],
        deadline: 0,
        budget: { percent: 20, min_per_second: 10 },
      },
      circuit_breaker: { max_in_flight: 0, max_queued: 0, queue_timeout: 10_000 },
      protocol: 'http1',
      timeouts: { connect: 5_000, header: 60_000, idle: 60_000 },
      keepalive: { connections: 128, idle_timeout: 30_000 },
    });
    assert.deepEqual(config.routes, [{ match: { path_prefix: '/api' }, upstream: 'app' }]);
    assert.deepEqual(config.trusted_proxies, []);
    assert.deepEqual(config.forwarded, { x_forwarded: true, forwarded: false, via: { request: true, response: false, pseudonym: 'gatehouse' } });
    assert.deepEqual(config.hide_backend, {
      remove_response_headers: ['server', 'x-powered-by'],
      rewrite_location: true,
      rewrite_cookie_domain: true,
    });
    assert.deepEqual(config.limits, {
      max_header_size: 16 * 1024,
      max_body_size: 100 * 1024 ** 2,
      header_timeout: 10_000,
      request_timeout: 300_000,
      keepalive_timeout: 5_000,
      max_requests_per_connection: 1000,
      max_header_count: 100,
      max_url_length: 8 * 1024,
      body_min_rate: 256,
      body_min_rate_grace: 10_000,
    });
    assert.deepEqual(config.protection, {
      access: { allow: [], deny: [], on_deny: 'close' },
      max_connections_per_client: 0,
      ipv6_prefix: 64,
      max_clients: 100_000,
      bans: { enabled: false, threshold: 10, window: 60_000, duration: 60_000, factor: 2, max_duration: 86_400_000, forget_after: 86_400_000 },
      paths: { merge_slashes: true, encoded_slashes: 'reject', backslashes: 'reject' },
    });
    assert.deepEqual(config.access_log, { enabled: true, format: 'json', path: 'stdout' });
    assert.deepEqual(config.log, { level: 'info' });
    assert.equal(config.shutdown_timeout, 30_000);
    assert.equal(config.admin, undefined);
  });

  test('durations and sizes with units become milliseconds and bytes; partial sections keep other defaults', () => {
    const config = parseConfigText(
      yaml(
        'listen: [{ address: ":0" }]',
        'limits: { header_timeout: 2s, max_body_size: 1mb, keepalive_timeout: 250 }',
        'shutdown_timeout: 1m',
        'upstreams:',
        '  app:',
        '    servers: [{ url: "http://10.0.0.1:80", weight: 3 }]',
        '    timeouts: { connect: 500ms }',
        'routes:',
        '  - redirect: { to: "https://example.com" }',
        '  - respond: { status: 204 }',
      ),
      'gatehouse.yaml',
    );
    assert.equal(config.limits.header_timeout, 2_000);
    assert.equal(config.limits.max_body_size, 1024 ** 2);
    assert.equal(config.limits.keepalive_timeout, 250);
    assert.equal(config.limits.request_timeout, 300_000);
    assert.equal(config.shutdown_timeout, 60_000);
    assert.deepEqual(config.upstreams.app?.timeouts, { connect: 500, header: 60_000, idle: 60_000 });
    assert.equal(config.upstreams.app?.servers[0]?.weight, 3);
    assert.deepEqual(config.routes[0], { match: {}, redirect: { to: 'https://example.com', status: 302, keep_query: true } });
    assert.deepEqual(config.routes[1], { match: {}, respond: { status: 204, body: '', content_type: 'text/plain; charset=utf-8' } });
  });

  test('durations in days and weeks; https:// servers are accepted', () => {
    const text = (shutdown: string): string =>
      yaml('listen: [{ address: ":0" }]', `shutdown_timeout: ${shutdown}`, 'upstreams:', '  app:', '    servers: [{ url: "https://10.0.0.1:443" }]');
    assert.equal(parseConfigText(text('7d'), 'gatehouse.yaml').shutdown_timeout, 7 * 86_400_000);
    assert.equal(parseConfigText(text('2w'), 'gatehouse.yaml').shutdown_timeout, 14 * 86_400_000);
    assert.equal(parseConfigText(text('1d'), 'gatehouse.yaml').upstreams.app?.servers[0]?.url, 'https://10.0.0.1:443');
  });

  test('JSON is YAML too', () => {
    const config = parseConfigText('{"listen": [{"address": "127.0.0.1:0"}], "routes": [{"respond": {"status": 200}}]}', 'g.json');
    assert.equal(config.routes.length, 1);
  });
});

describe('errors say file:line:col path: what is wrong', () => {
  test('an unknown field points at the key', () => {
    const message = errorOf(
      yaml(
        'listen:',
        '  - address: 127.0.0.1:8080',
        'upstreams:',
        '  app:',
        '    servers:',
        '      - url: http://127.0.0.1:3000',
        '    max_retries: 3',
        'routes:',
        '  - upstream: app',
      ),
    );
    assert.equal(message, 'gatehouse.yaml:7:5 upstreams.app.max_retries: unknown field "max_retries"');
  });

  test('an unknown field whose value is a block points at the key, not the next line', () => {
    const message = errorOf(
      yaml(
        'listen:', //
        '  - address: 127.0.0.1:8080',
        'routes:',
        '  - respond: { status: 200 }',
        '    headers:',
        '      x-a: b',
      ),
    );
    assert.equal(message, 'gatehouse.yaml:5:5 routes[0].headers: unknown field "headers"');
  });

  test('an unknown top-level field', () => {
    assert.equal(errorOf(yaml('listen: [{ address: ":0" }]', 'listeners: []')), 'gatehouse.yaml:2:1 listeners: unknown field "listeners"');
  });

  test('a server URL that is not http:// or https://, or not a URL at all', () => {
    const text = (url: string): string =>
      yaml('listen: [{ address: ":0" }]', 'upstreams:', '  app:', '    servers:', `      - url: ${url}`);
    const expected = 'gatehouse.yaml:5:14 upstreams.app.servers[0].url: must be an http:// or https:// URL such as http://127.0.0.1:3000';
    assert.equal(errorOf(text('ftp://127.0.0.1:21')), expected);
    assert.equal(errorOf(text('"not a url"')), expected);
  });

  test('a bad duration', () => {
    const message = errorOf(yaml('listen: [{ address: ":0" }]', 'limits:', '  header_timeout: 10 seconds'));
    assert.equal(message, 'gatehouse.yaml:3:19 limits.header_timeout: "10 seconds" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)');
  });

  test('a bad size', () => {
    const message = errorOf(yaml('listen: [{ address: ":0" }]', 'limits: { max_body_size: 10 parsecs }'));
    assert.match(message, /^gatehouse\.yaml:2:26 limits\.max_body_size: "10 parsecs" is not a size/);
  });

  test('a route without an action, or with two', () => {
    const none = errorOf(yaml('listen: [{ address: ":0" }]', 'routes:', '  - name: r', '    match: { path: / }'));
    assert.equal(none, 'gatehouse.yaml:3:5 routes[0]: a route needs exactly one action: upstream, gslb, redirect or respond');
    const two = errorOf(yaml('listen: [{ address: ":0" }]', 'routes:', '  - respond: { status: 200 }', '  - respond: { status: 200 }', '    redirect: { to: /x }'));
    assert.equal(two, 'gatehouse.yaml:4:5 routes[1]: a route needs exactly one action: upstream, gslb, redirect or respond');
  });

  test('a route naming an unknown upstream suggests the near ones', () => {
    const message = errorOf(
      yaml(
        'listen: [{ address: ":0" }]',
        'upstreams:',
        '  app: { servers: [{ url: "http://127.0.0.1:3000" }] }',
        '  api: { servers: [{ url: "http://127.0.0.1:3001" }] }',
        'routes:',
        '  - match: {}',
        '    upstream: ap',
      ),
    );
    assert.equal(message, 'gatehouse.yaml:7:15 routes[0].upstream: no upstream named "ap" (did you mean "app" or "api"?)');
  });

  test('a YAML syntax error gives the line and column', () => {
    assert.equal(
      errorOf(yaml('listen:', '  - address: 127.0.0.1:8080', ' bad: indent')),
      'gatehouse.yaml:3:1: All mapping items must start at the same column',
    );
    assert.match(errorOf(yaml('listen: [{ address: ":0" }', 'routes: []')), /^gatehouse\.yaml:\d+:\d+: /);
  });

  test('a duplicate key is an error', () => {
    assert.equal(errorOf(yaml('listen: [{ address: ":0" }]', 'listen: []')), 'gatehouse.yaml:2:1: Map keys must be unique');
  });

  test('an empty file', () => {
    assert.equal(errorOf(''), 'gatehouse.yaml: the file is empty');
  });

  test('every problem is listed, one a line', () => {
    const message = errorOf(yaml('listen:', '  - address: nope', 'shutdown_timeout: forever'));
    assert.deepEqual(message.split('\n'), [
      'gatehouse.yaml:2:14 listen[0].address: must be "host:port", "[ipv6]:port" or ":port"',
      'gatehouse.yaml:3:19 shutdown_timeout: "forever" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)',
    ]);
  });

  test('other checked values: CIDR, header names (at the key), regexes, redirect status', () => {
    assert.match(errorOf(yaml('listen: [{ address: ":0" }]', 'trusted_proxies: [10.0.0.0/33]')), /^gatehouse\.yaml:2:19 trusted_proxies\[0\]: must be an IP address or CIDR/);
    assert.match(
      errorOf(yaml('listen: [{ address: ":0" }]', 'routes:', '  - match: { path_regex: "(" }', '    respond: { status: 200 }')),
      /^gatehouse\.yaml:3:26 routes\[0\]\.match\.path_regex: is not a valid regular expression: Unterminated group$/,
    );
    assert.match(
      errorOf(yaml('listen: [{ address: ":0" }]', 'routes:', '  - respond: { status: 200 }', '    response_headers: { set: { "bad header": x } }')),
      /^gatehouse\.yaml:4:32 routes\[0\]\.response_headers\.set\.bad header: is not a valid header name$/,
    );
    assert.match(
      errorOf(yaml('listen: [{ address: ":0" }]', 'routes:', '  - redirect: { to: /x, status: 200 }')),
      /^gatehouse\.yaml:3:33 routes\[0\]\.redirect\.status: must be 301, 302, 303, 307 or 308$/,
    );
  });
});
