import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineBuffer } from '../../src/core/line-buffer.ts';

test('short and long text and byte fragments come out in order, across growth', () => {
  const out = new LineBuffer(8);
  const expected: string[] = [];
  for (let i = 0; i < 200; i++) {
    const short = `s${i}`;
    const long = `long-${'x'.repeat(i % 50)}-${i}`;
    out.ascii(short);
    out.bytes(Buffer.from('|'));
    out.ascii(long);
    expected.push(short, '|', long);
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
