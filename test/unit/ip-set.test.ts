/** IP parsing, CIDR sets (IPv4, IPv6, mapped addresses, large lists) and X-Forwarded-For resolution. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientFromForwardedFor } from '../../src/middleware/client-address.ts';
import { clientKey, formatIpv6, parseIp } from '../../src/middleware/ip-filter/ip-address.ts';
import { IpSet, parseRange } from '../../src/middleware/ip-filter/ip-set.ts';

describe('parseIp', () => {
  const words = new Uint32Array(4);
  const v6 = (text: string): string | null => (parseIp(text, words) === 6 ? formatIpv6(words) : null);

  test('IPv4: four decimal octets, no leading zeros, nothing else', () => {
    assert.equal(parseIp('192.0.2.1', words), 4);
    assert.equal(words[0], 0xc0000201);
    assert.equal(parseIp('255.255.255.255', words), 4);
    assert.equal(words[0], 0xffffffff);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d', '1..2.3', '1.2.3.']) {
      assert.equal(parseIp(bad, words), 0, bad);
    }
  });

  test('IPv6: compression, embedded IPv4, zones; malformed ones refused', () => {
    assert.equal(v6('::1'), '::1');
    assert.equal(v6('::'), '::');
    assert.equal(v6('2001:DB8::8:800:200C:417A'), '2001:db8::8:800:200c:417a');
    assert.equal(v6('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(v6('fe80::1%eth0'), 'fe80::1');
    assert.equal(v6('1::'), '1::');
    assert.equal(v6('64:ff9b::192.0.2.33'), '64:ff9b::c000:221');
    for (const bad of ['1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:::2', '1::2::3', ':1', '1:', '12345::', 'g::1', '::1.2.3']) {
      assert.equal(parseIp(bad, words), 0, bad);
    }
  });

  test('an IPv4-mapped IPv6 address is the IPv4 address', () => {
    assert.equal(parseIp('::ffff:192.0.2.1', words), 4);
    assert.equal(words[0], 0xc0000201);
    assert.equal(parseIp('::ffff:c000:201', words), 4);
    assert.equal(words[0], 0xc0000201);
  });
});

describe('IpSet', () => {
  test('addresses and CIDR ranges of both families', () => {
    const set = IpSet.from(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1', '172.16.0.0/12']);
    assert.ok(set.has('10.255.1.2'));
    assert.ok(set.has('10.0.0.0'));
    assert.ok(!set.has('11.0.0.0'));
    assert.ok(!set.has('9.255.255.255'));
    assert.ok(set.has('192.0.2.7'));
    assert.ok(!set.has('192.0.2.8'));
    assert.ok(set.has('172.31.255.255'));
    assert.ok(!set.has('172.32.0.0'));
    assert.ok(set.has('2001:db8:ffff::1'));
    assert.ok(!set.has('2001:db9::1'));
    assert.ok(set.has('::1'));
    assert.ok(!set.has('::2'));
    assert.ok(set.has('::ffff:10.1.2.3'), 'a mapped address matches its IPv4 range');
    assert.ok(!set.has('not an address'));
  });

  test('/0 covers a whole family, and overlapping or adjacent ranges merge', () => {
    assert.ok(IpSet.from(['0.0.0.0/0']).has('203.0.113.9'));
    assert.ok(!IpSet.from(['0.0.0.0/0']).has('::1'));
    assert.ok(IpSet.from(['::/0']).has('2001:db8::1'));
    const merged = IpSet.from(['10.0.0.0/25', '10.0.0.128/25', '10.0.0.5', '10.0.1.0/24']);
    assert.equal(merged.size, 1);
    assert.ok(merged.has('10.0.1.255') && !merged.has('10.0.2.0'));
    assert.equal(IpSet.from(['2001:db8::/64', '2001:db8:0:0:8000::/65']).size, 1);
  });

  test('a host part beyond the prefix is masked, and bad entries are named', () => {
    assert.ok(IpSet.from(['192.0.2.77/24']).has('192.0.2.1'));
    assert.deepEqual(parseRange('10.0.0.0/33'), null);
    assert.deepEqual(parseRange('::/129'), null);
    assert.deepEqual(parseRange('10.0.0.0/'), null);
    assert.throws(() => IpSet.from(['10.0.0.0/8', 'nope']), /\[1\]: "nope" is not an IP address or CIDR range/);
  });

  test('list files: comments, blank lines and file:line in errors', () => {
    const set = IpSet.fromText('# office\n192.0.2.0/24  # the LAN\n\n  2001:db8::/48\n', 'allow.txt');
    assert.equal(set.entries, 2);
    assert.ok(set.has('192.0.2.200') && set.has('2001:db8:0:ffff::1'));
    assert.throws(() => IpSet.fromText('10.0.0.1\n\n10.0.0.999\n', 'deny.txt'), /^Error: deny\.txt:3: "10\.0\.0\.999"/);
  });

  test('100,000 ranges: built once, looked up fast, and right', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    const ranges: string[] = [];
    const starts: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      const base = (random() & 0xffffff00) >>> 0;
      starts.push(base);
      ranges.push(`${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.0/24`);
    }
    const built = performance.now();
    const set = IpSet.from(ranges);
    const buildMs = performance.now() - built;
    const naive = new Set(starts);
    const probes: string[] = [];
    const expected: boolean[] = [];
    for (let i = 0; i < 50_000; i++) {
      const a = i % 2 === 0 ? ((starts[i] as number) | (random() & 255)) >>> 0 : random();
      probes.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`);
      expected.push(naive.has((a & 0xffffff00) >>> 0));
    }
    const looked = performance.now();
    const got = probes.map((p) => set.has(p));
    const perLookupUs = ((performance.now() - looked) * 1000) / probes.length;
    const wrong = got.filter((g, i) => g !== expected[i]).length;
    assert.equal(wrong, 0, 'every lookup agrees with a naive set');
    assert.ok(expected.filter(Boolean).length > 20_000, 'the probes cover hits and misses');
    // Guards against a pathological (linear) structure, not speed claims (those are bench/'s):
    // loose enough for a loaded CI machine; a scan of 100,000 ranges would take milliseconds per lookup.
    assert.ok(buildMs < 10_000, `built in ${buildMs.toFixed(0)} ms`);
    assert.ok(perLookupUs < 50, `${perLookupUs.toFixed(2)} µs per lookup`);
  });
});

describe('clientKey', () => {
  test('IPv4 as is; IPv6 by prefix', () => {
    assert.equal(clientKey('192.0.2.1', 64), '192.0.2.1');
    assert.equal(clientKey('2001:db8:1:2:3:4:5:6', 64), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:ffff::1', 64), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1::/48');
    assert.equal(clientKey('2001:db8::1', 128), '2001:db8::1');
    assert.equal(clientKey('::ffff:192.0.2.1', 64), '192.0.2.1');
  });
});

describe('clientFromForwardedFor', () => {
  const trusted = IpSet.from(['10.0.0.0/8']);
  test('the first untrusted hop from the right is the client', () => {
    assert.equal(clientFromForwardedFor('203.0.113.9', '10.0.0.1', trusted), '203.0.113.9');
    assert.equal(clientFromForwardedFor('203.0.113.9, 10.0.0.2', '10.0.0.1', trusted), '203.0.113.9');
    assert.equal(clientFromForwardedFor('6.6.6.6, 203.0.113.9, 10.0.0.2', '10.0.0.1', trusted), '203.0.113.9', 'a forged left part is ignored');
    assert.equal(clientFromForwardedFor('10.0.0.3, 10.0.0.2', '10.0.0.1', trusted), '10.0.0.3', 'all trusted: the leftmost');
    assert.equal(clientFromForwardedFor('2001:db8::1', '10.0.0.1', trusted), '2001:db8::1');
  });
  test('no header, or a malformed hop, leaves the last address a trusted hop vouched for', () => {
    assert.equal(clientFromForwardedFor(undefined, '10.0.0.1', trusted), '10.0.0.1');
    assert.equal(clientFromForwardedFor('garbage', '10.0.0.1', trusted), '10.0.0.1');
    assert.equal(clientFromForwardedFor('203.0.113.9, garbage, 10.0.0.2', '10.0.0.1', trusted), '10.0.0.2');
    assert.equal(clientFromForwardedFor('', '10.0.0.1', trusted), '10.0.0.1');
  });
});
