/**
 * IP addresses as numbers, parsed without allocating: an IPv4 address is one 32-bit word, an IPv6
 * address four. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) count as the IPv4 address they carry,
 * so that an IPv4 rule also covers a dual-stack socket's view of the same client.
 */

/** What `parseIp` found: 0 for not an address. */
export type IpFamily = 0 | 4 | 6;

const groups = new Uint16Array(8);

/**
 * Parses `text` into `out` (out[0] for IPv4, out[0..3] for IPv6, most significant first).
 * A zone ("fe80::1%eth0") is ignored. Octets with leading zeros are refused (some parsers read
 * them as octal, so their meaning is ambiguous).
 */
export function parseIp(text: string, out: Uint32Array): IpFamily {
  let end = text.indexOf('%');
  if (end === -1) end = text.length;
  if (text.indexOf(':') === -1) return parseIpv4(text, 0, end, out) ? 4 : 0;
  if (!parseIpv6(text, end)) return 0;
  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) is the IPv4 address a.b.c.d.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    out[0] = ((groups[6] as number) * 0x10000 + (groups[7] as number)) >>> 0;
    return 4;
  }
  for (let i = 0; i < 4; i++) out[i] = ((groups[2 * i] as number) * 0x10000 + (groups[2 * i + 1] as number)) >>> 0;
  return 6;
}

function parseIpv4(text: string, start: number, end: number, out: Uint32Array): boolean {
  let value = 0;
  let octet = -1;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && octet === 0) return false;
      octet = (octet < 0 ? 0 : octet * 10) + (c - 0x30);
      if (octet > 255 || ++digits > 3) return false;
    } else if (c === 0x2e) {
      if (octet < 0 || ++dots > 3) return false;
      value = value * 256 + octet;
      octet = -1;
      digits = 0;
    } else {
      return false;
    }
  }
  if (octet < 0 || dots !== 3) return false;
  out[0] = (value * 256 + octet) >>> 0;
  return true;
}

const v4 = new Uint32Array(1);

/** Fills `groups`; false when `text[0, end)` is not an IPv6 address. */
function parseIpv6(text: string, end: number): boolean {
  let count = 0;
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      groups.fill(0);
      return true;
    }
  }
  while (i < end) {
    if (count === 8) return false;
    let value = 0;
    let digits = 0;
    const start = i;
    for (; i < end; i++) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      if (++digits > 4) return false;
    }
    const c = i < end ? text.charCodeAt(i) : -1;
    if (c === 0x2e) {
      // An embedded IPv4 address takes the last two groups.
      if (count > 6 || !parseIpv4(text, start, end, v4)) return false;
      groups[count++] = (v4[0] as number) >>> 16;
      groups[count++] = (v4[0] as number) & 0xffff;
      i = end;
      break;
    }
    if (digits === 0) return false;
    groups[count++] = value;
    if (c === -1) break;
    if (c !== 0x3a) return false;
    i++;
    if (text.charCodeAt(i) === 0x3a) {
      if (gap !== -1) return false;
      gap = count;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap === -1) return count === 8;
  if (count > 7) return false;
  // Move the groups after "::" to the end and zero the gap.
  const tail = count - gap;
  for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k] as number;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Zeroes the bits of `words` (one word per 32 bits) past the first `bits`. */
export function maskWords(words: Uint32Array, count: number, bits: number): void {
  for (let i = 0; i < count; i++) {
    const keep = Math.max(0, Math.min(32, bits - 32 * i));
    words[i] = keep === 0 ? 0 : keep === 32 ? (words[i] as number) : ((words[i] as number) & (~0 << (32 - keep))) >>> 0;
  }
}

/** The canonical text of an IPv4 word. */
export function formatIpv4(word: number): string {
  return `${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}`;
}

/** The canonical (RFC 5952) text of four IPv6 words: lower case, the longest zero run as "::". */
export function formatIpv6(words: Uint32Array): string {
  const parts: number[] = [];
  for (let i = 0; i < 4; i++) parts.push((words[i] as number) >>> 16, (words[i] as number) & 0xffff);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((p) => p.toString(16)).join(':');
  if (bestStart === -1) return hex(parts);
  return `${hex(parts.slice(0, bestStart))}::${hex(parts.slice(bestStart + bestLength))}`;
}

const scratch = new Uint32Array(4);
let lastAddress = '';
let lastKey = '';
let lastPrefix = -1;

/**
 * The key a client's state (rate limits, bans, connection counts) is kept under: the IPv4 address
 * itself, or the IPv6 address's first `v6Prefix` bits ("2001:db8:1:2::/64"), since one IPv6 host
 * usually holds a whole /64 and could otherwise take a fresh identity for every request.
 */
export function clientKey(address: string, v6Prefix: number): string {
  if (address.indexOf(':') === -1 || v6Prefix >= 128) return address;
  if (address === lastAddress && v6Prefix === lastPrefix) return lastKey;
  const family = parseIp(address, scratch);
  let key: string;
  if (family === 4) key = formatIpv4(scratch[0] as number);
  else if (family === 6) {
    maskWords(scratch, 4, v6Prefix);
    key = `${formatIpv6(scratch)}/${v6Prefix}`;
  } else key = address;
  lastAddress = address;
  lastPrefix = v6Prefix;
  lastKey = key;
  return key;
}
