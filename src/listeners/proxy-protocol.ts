/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a TCP load balancer sends
 * first on each connection to say who the client is. Pure parsing: the connection guard feeds it
 * the bytes received so far until it says complete or invalid.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIpv4, formatIpv6 } from '../middleware/ip-filter/ip-address.ts';

/** What the bytes received so far say, once they say enough (parseProxyHeader gives undefined before). */
export type ProxyHeader =
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `source` is null for a LOCAL (v2) or UNKNOWN (v1) header: the socket's own peer stands. */
  | { readonly kind: 'ok'; readonly length: number; readonly source: string | null };

const V1_PREFIX = Buffer.from('PROXY ');
/** v1: "PROXY TCP6 <39> <39> 65535 65535\r\n" is the longest line (spec §2.1). */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** v2 headers carry addresses and optional TLVs; more than this is not a header a balancer sends. */
const V2_MAX_PAYLOAD = 4096;

/** The header at the start of `data`; undefined while more bytes are needed (a peek.ts Decide). */
export function parseProxyHeader(data: Buffer): ProxyHeader | undefined {
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? undefined : parseV1(data);
  if (startsLike(data, V2_SIGNATURE)) return data.length < 16 ? undefined : parseV2(data);
  return invalid('no PROXY protocol header');
}

/** True when `data` and `prefix` agree on their common length. */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

function invalid(reason: string): ProxyHeader {
  return { kind: 'invalid', reason };
}

function parseV1(data: Buffer): ProxyHeader | undefined {
  const end = data.indexOf('\r\n');
  if (end === -1) return data.length >= V1_MAX ? invalid('v1 line too long') : undefined;
  if (end + 2 > V1_MAX) return invalid('v1 line too long');
  const parts = data.subarray(0, end).toString('latin1').split(' ');
  const proto = parts[1];
  if (proto === 'UNKNOWN') return { kind: 'ok', length: end + 2, source: null };
  if (parts.length !== 6 || (proto !== 'TCP4' && proto !== 'TCP6')) return invalid('malformed v1 line');
  const [, , source = '', destination = '', sourcePort = '', destinationPort = ''] = parts;
  const isFamily = proto === 'TCP4' ? isIPv4 : isIPv6;
  if (!isFamily(source) || !isFamily(destination) || !isPort(sourcePort) || !isPort(destinationPort)) {
    return invalid('malformed v1 addresses');
  }
  return { kind: 'ok', length: end + 2, source };
}

function isPort(text: string): boolean {
  return /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535;
}

function parseV2(data: Buffer): ProxyHeader | undefined {
  const versionCommand = data[12] as number;
  if (versionCommand >> 4 !== 2) return invalid('unsupported v2 version');
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid('unknown v2 command');
  const family = (data[13] as number) >> 4;
  const payload = data.readUInt16BE(14);
  if (payload > V2_MAX_PAYLOAD) return invalid('v2 header too long');
  const length = 16 + payload;
  if (data.length < length) return undefined;
  // LOCAL: a health check from the balancer itself; UNSPEC and UNIX carry no IP address.
  if (command === 0 || family === 0 || family === 3) return { kind: 'ok', length, source: null };
  if (family === 1) {
    if (payload < 12) return invalid('short v2 IPv4 addresses');
    return { kind: 'ok', length, source: formatIpv4(data.readUInt32BE(16)) };
  }
  if (family === 2) {
    if (payload < 36) return invalid('short v2 IPv6 addresses');
    const words = new Uint32Array(4);
    for (let i = 0; i < 4; i++) words[i] = data.readUInt32BE(16 + 4 * i);
    // An IPv4-mapped source is the IPv4 client it names.
    if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return { kind: 'ok', length, source: formatIpv4(words[3] as number) };
    return { kind: 'ok', length, source: formatIpv6(words) };
  }
  return invalid('unknown v2 address family');
}
