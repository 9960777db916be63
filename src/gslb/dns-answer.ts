/**
 * One DNS answer of the GSLB's authoritative zone (RFC 1035), as a pure function of the query and
 * where it came from: the zone's name gets the chosen region's A/AAAA records, other names under
 * it NXDOMAIN, names outside it REFUSED. The client is the EDNS Client Subnet (RFC 7871) when a
 * resolver sends one, the resolver's address otherwise.
 */
import dnsPacket, { type Answer, type Packet } from 'dns-packet';
import type { Gslb, Region } from './regions.ts';

const AUTHORITATIVE = dnsPacket.AUTHORITATIVE_ANSWER;
const RECURSION_DESIRED = dnsPacket.RECURSION_DESIRED;
const NOERROR = 0;
const FORMERR = 1;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;
/** EDNS option code of Client Subnet (RFC 7871 §6). */
const ECS = 8;
/** The UDP payload size advertised, and the most sent (the DNS flag day 2020 value). */
const UDP_PAYLOAD = 1232;
/** The most a UDP answer may hold for a query without EDNS (RFC 1035 §4.2.1). */
const UDP_PLAIN = 512;

/** What a query is answered from. */
export interface DnsZone {
  readonly gslb: Gslb;
  /** Lower case, without the final dot. */
  readonly zone: string;
  /** Seconds. */
  readonly ttl: number;
  /** Encoded answers by region and query (see `answer`); a new zone (a reload) starts empty. */
  readonly answers: Map<string, Buffer>;
}

interface EcsOption {
  code: number;
  family?: number;
  sourcePrefixLength?: number;
  scopePrefixLength?: number;
  ip?: string;
}

/**
 * The response to `query` from `peer`, or null when nothing should be sent (not a query, or
 * unreadable). Over UDP an answer larger than the resolver can take is truncated (TC), so that
 * it asks again over TCP.
 */
export function answerQuery(zone: DnsZone, query: Buffer, peer: string, udp = false): Buffer | null {
  let packet: Packet;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    // Too broken to answer at all (RFC 1035 §4.1.1 FORMERR needs at least the header).
    return query.length >= 12 ? formatError(query) : null;
  }
  if (packet.type !== 'query') return null;
  const opt = findOpt(packet);
  const reply = answer(zone, packet, opt, query, peer);
  if (!udp || reply.length <= UDP_PLAIN) return reply;
  const limit = Math.min(UDP_PAYLOAD, Math.max(UDP_PLAIN, advertisedSize(opt)));
  return reply.length <= limit ? reply : truncated(reply);
}

/** Answers kept per zone; past this many the cache starts again. */
const ANSWER_CACHE_LIMIT = 10_000;

/**
 * The answer is a function of the query's bytes after its ID and of the region chosen, so it is
 * encoded once per (region, query) and then copied with the new ID: dns-packet's encoding is
 * most of an uncached answer's cost.
 */
function answer(zone: DnsZone, packet: Packet, opt: Answer | null, query: Buffer, peer: string): Buffer {
  const ecs = opt === null ? null : findEcs(opt);
  const region = choose(zone, packet, ecs, peer);
  const key = `${region === null ? -1 : region.index}${query.toString('latin1', 2)}`;
  const cache = zone.answers;
  const cached = cache.get(key);
  if (cached !== undefined) {
    const out = Buffer.allocUnsafe(cached.length);
    cached.copy(out);
    out.writeUInt16BE(packet.id ?? 0, 0);
    return out;
  }
  const reply = build(zone, packet, opt, ecs, region);
  if (cache.size >= ANSWER_CACHE_LIMIT) cache.clear();
  cache.set(key, reply);
  return reply;
}

/** The region named for an address query (A, AAAA, ANY) of the zone's name; null for any other query. */
function choose(zone: DnsZone, packet: Packet, ecs: EcsOption | null, peer: string): Region | null {
  const question = packet.questions?.[0];
  if (question === undefined || (packet.questions?.length ?? 0) > 1 || ((packet.flags ?? 0) >> 11) & 0xf) return null;
  const type: string = question.type;
  if (type !== 'A' && type !== 'AAAA' && type !== 'ANY') return null;
  if (zoneName(question.name) !== zone.zone) return null;
  const client = ecs !== null && (ecs.sourcePrefixLength ?? 0) > 0 && ecs.ip !== undefined ? ecs.ip : peer;
  const gslb = zone.gslb;
  const location = gslb.locate(client);
  // A DNS answer cannot be a 503: when no allowed region is usable, the nearest allowed one is
  // named anyway (never one outside the residency rule).
  const region = gslb.pick(location, 0, false) as Region;
  region.counters.dnsAnswers++;
  gslb.count(region);
  return region;
}

/** Lower case, without the final dot. */
function zoneName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function build(zone: DnsZone, packet: Packet, opt: Answer | null, ecs: EcsOption | null, region: Region | null): Buffer {
  const question = packet.questions?.[0];
  // Echoed in the answer (RFC 7871 §7.2.2): a fresh option, as dns-packet re-sends a decoded one's raw bytes.
  const echo: EcsOption | null = ecs === null ? null : { code: ECS, family: ecs.family ?? 1, sourcePrefixLength: ecs.sourcePrefixLength ?? 0, scopePrefixLength: 0, ip: ecs.ip ?? '0.0.0.0' };
  const flags = AUTHORITATIVE | ((packet.flags ?? 0) & RECURSION_DESIRED);
  const reply: Packet = { type: 'response', id: packet.id ?? 0, flags, questions: question === undefined ? [] : [question], answers: [], authorities: [], additionals: [] };
  if (opt !== null) reply.additionals?.push(optRecord(echo));
  if (question === undefined || (packet.questions?.length ?? 0) > 1) return encode(reply, FORMERR);
  if (((packet.flags ?? 0) >> 11) & 0xf) return encode(reply, NOTIMP);
  const name = zoneName(question.name);
  if (name !== zone.zone) {
    if (name.endsWith(`.${zone.zone}`)) {
      reply.authorities?.push(soa(zone));
      return encode(reply, NXDOMAIN);
    }
    return encode(reply, REFUSED);
  }
  const type: string = question.type;
  if (region === null) {
    // The name exists, with no record of this type (NODATA, RFC 2308 §2.2): SOA for negative caching.
    if (type === 'SOA') reply.answers?.push(soa(zone));
    else reply.authorities?.push(soa(zone));
    return encode(reply, NOERROR);
  }
  // RFC 7871 §7.2.1: the answer holds for the whole source prefix.
  if (echo !== null) echo.scopePrefixLength = echo.sourcePrefixLength ?? 0;
  const answers = reply.answers as Answer[];
  if (type !== 'AAAA') for (const address of region.ipv4) answers.push({ type: 'A', name: question.name, ttl: zone.ttl, data: address });
  if (type !== 'A') for (const address of region.ipv6) answers.push({ type: 'AAAA', name: question.name, ttl: zone.ttl, data: address });
  if (answers.length === 0) reply.authorities?.push(soa(zone));
  return encode(reply, NOERROR);
}

function encode(reply: Packet, rcode: number): Buffer {
  reply.flags = ((reply.flags ?? 0) & ~0xf) | rcode;
  return dnsPacket.encode(reply);
}

/** A FORMERR answer echoing the query's ID (and nothing else). */
function formatError(query: Buffer): Buffer {
  const out = Buffer.alloc(12);
  query.copy(out, 0, 0, 2);
  // QR set, opcode from the query, RCODE 1.
  out.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7800) | FORMERR, 2);
  return out;
}

function findOpt(packet: Packet): Answer | null {
  for (const record of packet.additionals ?? []) if (record.type === 'OPT') return record;
  return null;
}

function findEcs(opt: Answer): EcsOption | null {
  const options = (opt as { options?: EcsOption[] }).options ?? [];
  for (const option of options) if (option.code === ECS && (option.family === 1 || option.family === 2)) return option;
  return null;
}

/** The answer's OPT record: our payload size, and the client subnet echoed with its scope (RFC 7871 §7.2.2). */
function optRecord(ecs: EcsOption | null): Answer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: UDP_PAYLOAD,
    flags: 0,
    options: ecs === null ? [] : [ecs],
  } as unknown as Answer;
}

function soa(zone: DnsZone): Answer {
  return {
    type: 'SOA',
    name: zone.zone,
    ttl: zone.ttl,
    data: {
      mname: zone.zone,
      rname: `hostmaster.${zone.zone}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      // RFC 2308 §5: the negative-caching TTL.
      minimum: zone.ttl,
    },
  };
}

/** The UDP payload size the query's OPT record advertises; 512 without one (RFC 6891 §6.2.3). */
function advertisedSize(opt: Answer | null): number {
  return (opt as { udpPayloadSize?: number } | null)?.udpPayloadSize ?? UDP_PLAIN;
}

/** The header of `reply` with TC set and no records but the question (RFC 2181 §9). */
function truncated(reply: Buffer): Buffer {
  const packet = dnsPacket.decode(reply);
  return dnsPacket.encode({ type: 'response', id: packet.id ?? 0, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, questions: packet.questions ?? [] });
}
