/** The `tracing` block and `admin.metrics`: defaults, and errors that say where and what. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { errorOf, yaml } from '../helpers/config.ts';

const LISTEN = 'listen: [{ address: ":0" }]';

test('tracing and metrics defaults: trace context and X-Request-Id on, no OTLP export; metrics on with an admin listener', () => {
  const config = configFromObject({ listen: [{ address: ':0' }], admin: { address: '127.0.0.1:0' } });
  assert.deepEqual(config.tracing, { enabled: true, request_id_header: 'x-request-id' });
  assert.equal(config.admin?.metrics, true);
  const named = configFromObject({ listen: [{ address: ':0' }], tracing: { request_id_header: 'X-Correlation-ID', otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' } } });
  assert.equal(named.tracing.request_id_header, 'x-correlation-id');
  assert.deepEqual(named.tracing.otlp, { endpoint: 'http://127.0.0.1:4318/v1/traces', service_name: 'gatehouse', headers: {}, sample_ratio: 1 });
});

test('tracing and metrics errors name the file, line, column and field', () => {
  assert.equal(errorOf(yaml(LISTEN, 'tracing: { otlp: { endpoint: "ftp://x/v1/traces" } }')), 'gatehouse.yaml:2:30 tracing.otlp.endpoint: must be an http:// or https:// URL');
  assert.equal(errorOf(yaml(LISTEN, 'tracing: { request_id_header: "bad header" }')), 'gatehouse.yaml:2:31 tracing.request_id_header: is not a valid header name');
  assert.equal(errorOf(yaml(LISTEN, 'tracing: { request_id_header: true }')), 'gatehouse.yaml:2:31 tracing.request_id_header: must be a string or false (got true)');
  assert.equal(errorOf(yaml(LISTEN, 'tracing: { otlp: { endpoint: "http://c:4318/v1/traces", sample_ratio: 2 } }')), 'gatehouse.yaml:2:71 tracing.otlp.sample_ratio: must be at most 1');
  assert.equal(errorOf(yaml(LISTEN, 'admin: { address: "127.0.0.1:0", metrics: "yes" }')), 'gatehouse.yaml:2:43 admin.metrics: must be true or false (got "yes")');
  assert.equal(errorOf(yaml(LISTEN, 'tracing: { enabeld: true }')), 'gatehouse.yaml:2:12 tracing.enabeld: unknown field "enabeld" (did you mean "enabled"?)');
});
