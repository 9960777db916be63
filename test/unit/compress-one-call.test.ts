import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { compressWhole } from '../../src/middleware/compress/one-call.ts';

const TEXT = Buffer.from('<p class="item">gateway proxy cache stream header request response</p>\n'.repeat(300));
// Incompressible and larger than the module's 64 KiB output buffer: the output comes in pieces.
const NOISE = randomBytes(200 * 1024);

test('gzip with a reused context gives what zlib.gzipSync gives, body after body, at every level', () => {
  for (let level = 1; level <= 9; level++) {
    for (const input of [TEXT, NOISE, Buffer.alloc(0), TEXT.subarray(0, 1), TEXT]) {
      const out = compressWhole('gzip', input, level);
      assert.ok(out.equals(zlib.gzipSync(input, { level })), `level ${level}, ${input.length} bytes`);
    }
  }
});

test('zstd with a reused context decodes back to each body in turn', () => {
  for (const level of [1, 3, 19]) {
    for (const input of [TEXT, NOISE, Buffer.alloc(0), TEXT.subarray(0, 1), TEXT]) {
      const out = compressWhole('zstd', input, level);
      assert.ok(zlib.zstdDecompressSync(out).equals(input), `level ${level}, ${input.length} bytes`);
    }
  }
});

test('a result is its own buffer: the next call does not overwrite it', () => {
  const first = compressWhole('gzip', TEXT, 5);
  const copy = Buffer.from(first);
  compressWhole('gzip', Buffer.from('something else entirely '.repeat(40)), 5);
  assert.ok(first.equals(copy));
});

test('a level\'s context is made once and reused: later bodies make no zlib stream and do not fall back to the public one-call functions', (t) => {
  // The first calls make the check and this level's contexts.
  compressWhole('gzip', TEXT, 4);
  compressWhole('zstd', TEXT, 4);
  const made = t.mock.fn();
  t.mock.method(zlib, 'createGzip', made);
  t.mock.method(zlib, 'createZstdCompress', made);
  t.mock.method(zlib, 'gzipSync', made);
  t.mock.method(zlib, 'zstdCompressSync', made);
  for (let i = 0; i < 3; i++) {
    assert.ok(zlib.gunzipSync(compressWhole('gzip', TEXT, 4)).equals(TEXT));
    assert.ok(zlib.zstdDecompressSync(compressWhole('zstd', TEXT, 4)).equals(TEXT));
  }
  assert.equal(made.mock.callCount(), 0);
});
