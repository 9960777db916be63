/** When made certificates are renewed, and the backoff after failed attempts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff, FIRST_BACKOFF_MS, MAX_BACKOFF_MS, renewalTime } from '../../src/listeners/tls/renewal.ts';

const DAY = 86_400_000;

test('renewal starts at two thirds of the lifetime', () => {
  const notBefore = new Date(Date.UTC(2026, 0, 1));
  assert.equal(renewalTime(notBefore, new Date(notBefore.getTime() + 90 * DAY)), notBefore.getTime() + 60 * DAY, "a Let's Encrypt 90-day certificate: after 60 days");
  assert.equal(renewalTime(notBefore, new Date(notBefore.getTime() + 6 * DAY)), notBefore.getTime() + 4 * DAY);
});

test('the wait after failures doubles from one minute and stops at a day', () => {
  assert.equal(backoff(1), FIRST_BACKOFF_MS);
  assert.equal(backoff(2), 2 * FIRST_BACKOFF_MS);
  assert.equal(backoff(5), 16 * FIRST_BACKOFF_MS);
  assert.equal(backoff(20), MAX_BACKOFF_MS);
  assert.equal(backoff(10_000), MAX_BACKOFF_MS, 'no overflow after many failures');
});
