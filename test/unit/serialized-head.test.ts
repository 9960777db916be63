import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerializedHead, SUPPORTED } from '../../src/listeners/serialized-head.ts';

test('node:http keeps its serialised head in _header (the fast path is on)', () => {
  assert.equal(SUPPORTED, true);
});

test('a valid field list becomes its lines, with whether it has a Date', () => {
  const head = SerializedHead.of(['content-type', 'text/plain', 'x-multi', 'a', 'x-multi', 'b', 'Date', 'Wed, 25 Nov 2026 10:00:00 GMT']);
  assert.ok(head !== null);
  assert.equal(head.lines, 'content-type: text/plain\r\nx-multi: a\r\nx-multi: b\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\n');
  assert.equal(head.hasDate, true);
  assert.equal(SerializedHead.of([])?.lines, '');
  assert.equal(SerializedHead.of(['etag', '"x"'])?.hasDate, false);
  assert.ok(SerializedHead.of(['x-latin1', 'caf\u00e9']) !== null, 'obs-text (0x80-0xff) is allowed, as node:http allows it');
});

test('fields that are not valid on the wire, or that frame the response, are refused', () => {
  for (const flat of [
    ['x-a', 'one\r\ntwo'],
    ['x-a', 'one\ntwo'],
    ['x-a', 'nul\u0000'],
    ['x-a', 'wide\u0100'],
    ['', 'empty name'],
    ['bad name', 'x'],
    ['content-length', '5'],
    ['Transfer-Encoding', 'chunked'],
    ['connection', 'close'],
    ['trailer', 'x-t'],
    ['odd-length'],
  ]) {
    assert.equal(SerializedHead.of(flat), null, JSON.stringify(flat));
  }
});

test('withAge appends Age and Cache-Status, joined again only when they change; a bad status gives null and spoils nothing', () => {
  const head = SerializedHead.of(['etag', '"v1"']);
  assert.ok(head !== null);
  const first = head.withAge('1', 'gatehouse; hit');
  assert.equal(first, 'etag: "v1"\r\nage: 1\r\ncache-status: gatehouse; hit\r\n');
  assert.equal(head.withAge('1', 'gatehouse; hit'), first);
  assert.equal(head.withAge('2', 'gatehouse; hit'), 'etag: "v1"\r\nage: 2\r\ncache-status: gatehouse; hit\r\n');
  assert.equal(head.withAge('2', 'bad\r\nstatus'), null);
  assert.equal(head.withAge('3', 'gatehouse; hit'), 'etag: "v1"\r\nage: 3\r\ncache-status: gatehouse; hit\r\n');
});
