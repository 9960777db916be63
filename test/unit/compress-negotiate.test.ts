import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptsCoding, chooseEncoding, parseAcceptEncoding } from '../../src/middleware/compress/negotiate.ts';
import { compileTypes } from '../../src/middleware/compress/types.ts';

const PREFERENCE = ['zstd', 'br', 'gzip'] as const;

test('Accept-Encoding parsing: q-values, case, x-gzip, first mention wins', () => {
  const parsed = parseAcceptEncoding('GZIP;q=0.5, br, x-gzip;q=1, *;q=0.1, deflate;q=bad');
  assert.equal(parsed.get('gzip'), 0.5);
  assert.equal(parsed.get('br'), 1);
  assert.equal(parsed.get('*'), 0.1);
  assert.equal(parsed.get('deflate'), 0);
});

test('the highest q-value wins; ties go to the server preference', () => {
  assert.equal(chooseEncoding('gzip, deflate, br, zstd', PREFERENCE), 'zstd');
  assert.equal(chooseEncoding('gzip, deflate, br', PREFERENCE), 'br');
  assert.equal(chooseEncoding('gzip;q=1, br;q=0.8', PREFERENCE), 'gzip');
  assert.equal(chooseEncoding('gzip', ['gzip']), 'gzip');
  assert.equal(chooseEncoding('br', ['gzip']), null);
});

test('q=0 refuses, * accepts what is not named, identity preferred means none', () => {
  assert.equal(chooseEncoding('br;q=0, gzip', PREFERENCE), 'gzip');
  assert.equal(chooseEncoding('*', PREFERENCE), 'zstd');
  assert.equal(chooseEncoding('*;q=0.5, zstd;q=0', PREFERENCE), 'br');
  assert.equal(chooseEncoding('gzip;q=0.5, identity', PREFERENCE), null);
  assert.equal(chooseEncoding('identity', PREFERENCE), null);
  assert.equal(chooseEncoding('', PREFERENCE), null);
  assert.equal(chooseEncoding(undefined, PREFERENCE), null);
});

test('a backend encoding is acceptable unless refused; without Accept-Encoding any is', () => {
  assert.equal(acceptsCoding('gzip, br', 'gzip'), true);
  assert.equal(acceptsCoding('br', 'gzip'), false);
  assert.equal(acceptsCoding('identity', 'gzip'), false);
  assert.equal(acceptsCoding('*', 'zstd'), true);
  assert.equal(acceptsCoding(undefined, 'br'), true);
});

test('content types: exact types and families, parameters ignored', () => {
  const matches = compileTypes(['text/*', 'application/json']);
  assert.ok(matches('text/html; charset=utf-8'));
  assert.ok(matches('Application/JSON'));
  assert.ok(!matches('application/octet-stream'));
  assert.ok(!matches(undefined));
});
