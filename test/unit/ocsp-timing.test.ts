/** When OCSP responses are refreshed and failed fetches retried. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_OCSP_TIMING, refreshDelay, retryDelay } from '../../src/listeners/tls/ocsp-stapler.ts';
import type { OcspResponse } from '../../src/listeners/tls/ocsp.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

function response(thisUpdate: number, nextUpdate: number): OcspResponse {
  return { der: Buffer.alloc(0), status: 'good', thisUpdate: new Date(thisUpdate), nextUpdate: new Date(nextUpdate) };
}

test('OCSP refresh: halfway between thisUpdate and nextUpdate, within the bounds', () => {
  assert.equal(refreshDelay(response(T0, T0 + 8 * HOUR), T0), 4 * HOUR);
  assert.equal(refreshDelay(response(T0, T0 + 8 * HOUR), T0 + HOUR), 3 * HOUR, 'fetched an hour after thisUpdate');
  assert.equal(refreshDelay(response(T0, T0 + 8 * HOUR), T0 + 6 * HOUR), HOUR, 'past halfway: half of what is left');
  assert.equal(refreshDelay(response(T0, T0 + 7 * 24 * HOUR), T0), 24 * HOUR, 'a week-long response is asked again within a day');
  assert.equal(refreshDelay(response(T0, T0 + 10_000), T0), DEFAULT_OCSP_TIMING.refreshMin, 'never sooner than a minute');
});

test('OCSP retry: backs off from one minute to an hour, and retries before the cached response expires', () => {
  assert.equal(retryDelay(1, null, T0), 60_000);
  assert.equal(retryDelay(2, null, T0), 120_000);
  assert.equal(retryDelay(20, null, T0), HOUR);
  assert.equal(retryDelay(20, response(T0, T0 + 30 * 60_000), T0), 15 * 60_000, 'half of the time left');
});
