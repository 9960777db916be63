import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineBuffer } from '../../src/core/line-buffer.ts';

test('short and long text and short and long byte fragments come out in order, across growth', () => {
  const out = new LineBuffer(8);
  const expected: string[] = [];
  for (let i = 0; i < 200; i++) {
    const short = `s${i}`;
    const long = `long-${'x'.repeat(i % 50)}-${i}`;
    out.ascii(short);
    out.bytes(Buffer.from('|'));
    out.ascii(long);
    // Fragments past 16 bytes are copied by TypedArray#set, shorter ones byte by byte.
    const fragment = `<${'f'.repeat(i % 40)}>`;
    out.bytes(Buffer.from(fragment));
    expected.push(short, '|', long, fragment);
  }
  assert.equal(out.view().toString('latin1'), expected.join(''));
  assert.equal(out.length, expected.join('').length);
});

test('clear empties the buffer and gives back memory a burst made large', () => {
  const out = new LineBuffer(16);
  out.ascii('x'.repeat(1000));
  out.clear();
  assert.equal(out.length, 0);
  out.ascii('after');
  assert.equal(out.view().toString('latin1'), 'after');
  // The view is a window on the buffer's own memory (not pooled): its size is the buffer's.
  assert.equal(out.view().buffer.byteLength, 16, 'the 1,000-byte buffer was given back');
  // Growth short of a burst (16× the first size) is kept for the next batch.
  out.ascii('y'.repeat(100));
  const grown = out.view().buffer;
  out.clear();
  out.ascii('again');
  assert.equal(out.view().buffer, grown, 'the same memory, not a new buffer');
  assert.equal(out.view().toString('latin1'), 'again');
});

test('integer writes decimal digits, across growth, and falls back to String() for what is not a safe non-negative integer', () => {
  const out = new LineBuffer(4);
  const values = [0, 7, 10, 99, 100, 65535, 1_000_000, Number.MAX_SAFE_INTEGER, -1, 1.5, Number.NaN];
  for (const value of values) {
    out.integer(value);
    out.ascii(',');
  }
  assert.equal(out.view().toString('latin1'), values.map((v) => `${String(v)},`).join(''));
});

test('quotedPlain quotes printable ASCII and refuses, writing nothing, what JSON must escape', () => {
  const out = new LineBuffer(4);
  assert.equal(out.quotedPlain('/path?q=1'), true);
  for (const needsEscape of ['a"b', 'a\\b', 'tab\there', 'caf\u00e9', 'del\u007f', 'x'.repeat(40) + '"']) {
    const before = out.length;
    assert.equal(out.quotedPlain(needsEscape), false, JSON.stringify(needsEscape));
    assert.equal(out.length, before, 'nothing appended');
  }
  assert.equal(out.quotedPlain(''), true);
  assert.equal(out.view().toString('latin1'), '"/path?q=1"""');
});
