/** PROXY protocol v1 and v2 parsing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProxyHeader } from '../../src/listeners/proxy-protocol.ts';

const V2 = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header: version 2, `command`, `family`, the address block and extra TLV bytes. */
function v2Header(command: 0 | 1, family: number, addresses: Buffer, tlv = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = family;
  head.writeUInt16BE(addresses.length + tlv.length, 2);
  return Buffer.concat([V2, head, addresses, tlv]);
}

test('v1: TCP4, TCP6 and UNKNOWN', () => {
  const line = 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n';
  assert.deepEqual(parseProxyHeader(Buffer.from(`${line}GET / HTTP/1.1\r\n`)), { kind: 'ok', length: line.length, source: '192.0.2.1' });
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n')), { kind: 'ok', length: 40, source: '2001:db8::1' });
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'ok', length: 15, source: null });
});

test('v1: incomplete until the line ends; malformed lines refused', () => {
  assert.equal(parseProxyHeader(Buffer.from('PRO')), undefined);
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.1')), undefined);
  for (const bad of [
    'PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n',
    'PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n',
    'PROXY TCP4 192.0.2.1 198.51.100.2 65536 1\r\n',
    'PROXY TCP4 192.0.2.1 198.51.100.2 01 1\r\n',
    'PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n',
    `PROXY TCP4 ${'1'.repeat(120)}\r\n`,
    'GET / HTTP/1.1\r\n',
  ]) {
    assert.equal(parseProxyHeader(Buffer.from(bad))?.kind, 'invalid', bad);
  }
  assert.equal(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(110)}`))?.kind, 'invalid', 'too long without an end');
});

test('v2: IPv4, IPv6, LOCAL, TLVs, and the bytes after the header', () => {
  const v4 = Buffer.from([192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb]);
  const header = v2Header(1, 0x11, v4, Buffer.from([0x04, 0x00, 0x01, 0x00]));
  const withRequest = Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n')]);
  assert.deepEqual(parseProxyHeader(withRequest), { kind: 'ok', length: header.length, source: '192.0.2.1' });
  const v6 = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(v6, 0);
  assert.deepEqual(parseProxyHeader(v2Header(1, 0x21, v6)), { kind: 'ok', length: 52, source: '2001:db8::1' });
  assert.deepEqual(parseProxyHeader(v2Header(0, 0x00, Buffer.alloc(0))), { kind: 'ok', length: 16, source: null });
  assert.equal(parseProxyHeader(header.subarray(0, 20)), undefined);
  assert.equal(parseProxyHeader(V2.subarray(0, 5)), undefined);
});

test('v2: bad version, command, family or lengths refused', () => {
  const v4 = Buffer.alloc(12);
  const bad = v2Header(1, 0x11, v4);
  bad[12] = 0x11;
  assert.equal(parseProxyHeader(bad)?.kind, 'invalid');
  const command = v2Header(1, 0x11, v4);
  command[12] = 0x22;
  assert.equal(parseProxyHeader(command)?.kind, 'invalid');
  assert.equal(parseProxyHeader(v2Header(1, 0x11, Buffer.alloc(8)))?.kind, 'invalid');
  assert.equal(parseProxyHeader(v2Header(1, 0x21, Buffer.alloc(20)))?.kind, 'invalid');
  assert.equal(parseProxyHeader(v2Header(1, 0x41, v4))?.kind, 'invalid');
  const huge = Buffer.concat([V2, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
  assert.equal(parseProxyHeader(huge)?.kind, 'invalid');
});
