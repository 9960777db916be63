/** The GSLB's DNS answers as a pure function (without dig): IDs on cached answers, the client subnet, the region moving. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket, { type Packet } from 'dns-packet';
import { compileSnapshot, retireSnapshot } from '../../src/config/compile.ts';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Registry } from '../../src/core/registry.ts';
import { answerQuery, type DnsZone } from '../../src/gslb/dns-answer.ts';
import type { Gslb } from '../../src/gslb/regions.ts';

function zone(t: { after(fn: () => void): void }): DnsZone {
  const registry = new Registry();
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    upstreams: { eu: { servers: [{ url: 'http://127.0.0.1:1' }] }, us: { servers: [{ url: 'http://127.0.0.1:2' }] } },
    gslb: {
      g: {
        mode: 'dns',
        default_region: 'us',
        regions: {
          eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu', addresses: ['192.0.2.1'] },
          us: { latitude: 38.95, longitude: -77.45, upstream: 'us', addresses: ['192.0.2.2'] },
        },
        dns: { listen: '127.0.0.1:0', zone: 'app.example.test' },
      },
    } as unknown as ConfigInput['gslb'],
  });
  const snapshot = compileSnapshot(config, registry);
  t.after(() => retireSnapshot(snapshot, registry));
  return { gslb: snapshot.gslb.get('g') as Gslb, zone: 'app.example.test', ttl: 20, answers: new Map() };
}

function query(id: number, subnet: string | null): Buffer {
  const packet: Packet = { type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'app.example.test' }] };
  if (subnet !== null) {
    packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: subnet }] } as never];
  }
  return dnsPacket.encode(packet);
}

function ask(z: DnsZone, id: number, subnet: string | null): { id: number; addresses: unknown[]; scope: number | undefined } {
  const reply = answerQuery(z, query(id, subnet), '127.0.0.1', true);
  assert.ok(reply !== null);
  const packet = dnsPacket.decode(reply);
  const opt = packet.additionals?.find((r) => r.type === 'OPT') as { options?: { scopePrefixLength?: number }[] } | undefined;
  return { id: packet.id ?? -1, addresses: (packet.answers ?? []).map((a) => (a as { data?: unknown }).data), scope: opt?.options?.[0]?.scopePrefixLength };
}

test('an answer is the client subnet\'s region, and one given from the cache carries the new query\'s ID', (t) => {
  const z = zone(t);
  assert.deepEqual(ask(z, 1, '85.214.0.0'), { id: 1, addresses: ['192.0.2.1'], scope: 24 });
  assert.equal(z.answers.size, 1);
  assert.deepEqual(ask(z, 2, '85.214.0.0'), { id: 2, addresses: ['192.0.2.1'], scope: 24 }, 'from the cache, with its own ID');
  assert.equal(z.answers.size, 1, 'the second answer came from the cache');
  // Without a subnet the resolver (loopback, unknown) decides: the default region.
  assert.deepEqual(ask(z, 3, null), { id: 3, addresses: ['192.0.2.2'], scope: undefined });
  assert.equal(z.gslb.regions[0]?.counters.dnsAnswers, 2);
  assert.equal(z.gslb.regions[1]?.counters.dnsAnswers, 1);
});

test('a cached answer is not given once the region changed: the region is part of its key', (t) => {
  const z = zone(t);
  assert.deepEqual(ask(z, 1, '85.214.0.0').addresses, ['192.0.2.1']);
  const eu = z.gslb.regions[0]!;
  eu.upstream.servers[0]!.state.setAdminDrain(true);
  try {
    // eu cannot take requests: the nearest usable region is named.
    assert.deepEqual(ask(z, 2, '85.214.0.0').addresses, ['192.0.2.2']);
  } finally {
    eu.upstream.servers[0]!.state.setAdminDrain(false);
  }
  assert.deepEqual(ask(z, 3, '85.214.0.0').addresses, ['192.0.2.1']);
});
