/**
 * A set of IP ranges (addresses and CIDR blocks, IPv4 and IPv6), built once and looked up in
 * O(log n) without allocating: the ranges become sorted, merged intervals searched by bisection.
 * node:net's BlockList checks its rules one by one, which is too slow for 100,000 ranges.
 */
import { maskWords, parseIp, type IpFamily } from './ip-address.ts';

/** One parsed entry: its family, and its first and last address as words. */
interface Range {
  readonly family: 4 | 6;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
}

const scratch = new Uint32Array(4);

/** Parses "192.0.2.1", "10.0.0.0/8", "2001:db8::/32"; null when malformed. */
export function parseRange(text: string): Range | null {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = parseIp(address, scratch);
  if (family === 0 || address.includes('%')) return null;
  // An IPv4-mapped IPv6 range is read as IPv4: its prefix counts from bit 96.
  const mapped = family === 4 && address.includes(':');
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (slash !== -1) {
    const suffix = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(suffix)) return null;
    bits = Number(suffix) - (mapped ? 96 : 0);
    if (bits < 0 || bits > max) return null;
  }
  const words = family === 4 ? 1 : 4;
  const start = scratch.slice(0, words);
  maskWords(start, words, bits);
  const end = start.slice();
  for (let i = 0; i < words; i++) {
    const keep = Math.max(0, Math.min(32, bits - 32 * i));
    if (keep < 32) end[i] = ((end[i] as number) | (keep === 0 ? 0xffffffff : ~(~0 << (32 - keep)))) >>> 0;
  }
  return { family, start, end };
}

export class IpSet {
  /** Merged IPv4 intervals, sorted: [starts[i], ends[i]]. */
  readonly #v4Starts: Uint32Array;
  readonly #v4Ends: Uint32Array;
  /** Merged IPv6 intervals, sorted, four words each. */
  readonly #v6Starts: Uint32Array;
  readonly #v6Ends: Uint32Array;
  /** How many entries the set was built from. */
  readonly entries: number;

  private constructor(v4: Range[], v6: Range[], entries: number) {
    this.entries = entries;
    [this.#v4Starts, this.#v4Ends] = merge(v4, 1);
    [this.#v6Starts, this.#v6Ends] = merge(v6, 4);
  }

  static readonly EMPTY = new IpSet([], [], 0);

  /**
   * Builds a set from entries; throws an Error naming the first bad one. `where(i)` says where entry
   * i came from, for the message (e.g. "deny.txt:12").
   */
  static from(entries: readonly string[], where: (index: number) => string = (i) => `[${i}]`): IpSet {
    const v4: Range[] = [];
    const v6: Range[] = [];
    entries.forEach((entry, i) => {
      const range = parseRange(entry);
      if (range === null) throw new Error(`${where(i)}: "${entry}" is not an IP address or CIDR range`);
      (range.family === 4 ? v4 : v6).push(range);
    });
    return new IpSet(v4, v6, entries.length);
  }

  /**
   * Parses a list file: one address or CIDR range per line; "#" starts a comment; blank lines are
   * skipped. Throws naming `file:line` of the first bad entry.
   */
  static fromText(text: string, file: string): IpSet {
    const entries: string[] = [];
    const lines: number[] = [];
    text.split('\n').forEach((line, i) => {
      const hash = line.indexOf('#');
      const entry = (hash === -1 ? line : line.slice(0, hash)).trim();
      if (entry !== '') {
        entries.push(entry);
        lines.push(i + 1);
      }
    });
    return IpSet.from(entries, (i) => `${file}:${lines[i]}`);
  }

  get size(): number {
    return this.#v4Starts.length + this.#v6Starts.length / 4;
  }

  /** True when `address` (an IP address as text) is in the set; false for anything unparsable. */
  has(address: string): boolean {
    return this.contains(parseIp(address, scratch), scratch);
  }

  /** The same for an address already parsed by `parseIp`. */
  contains(family: IpFamily, words: Uint32Array): boolean {
    if (family === 4) return this.#v4Starts.length > 0 && this.#hasV4(words[0] as number);
    if (family === 6) return this.#v6Starts.length > 0 && this.#hasV6(words);
    return false;
  }

  #hasV4(value: number): boolean {
    const starts = this.#v4Starts;
    let lo = 0;
    let hi = starts.length - 1;
    // The last interval starting at or before `value`.
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((starts[mid] as number) <= value) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && value <= (this.#v4Ends[hi] as number);
  }

  #hasV6(words: Uint32Array): boolean {
    const starts = this.#v6Starts;
    let lo = 0;
    let hi = starts.length / 4 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(starts, mid * 4, words, 0) <= 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && compare(words, 0, this.#v6Ends, hi * 4) <= 0;
  }
}

function compare(a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  for (let k = 0; k < 4; k++) {
    const x = a[ai + k] as number;
    const y = b[bi + k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function compareWords(a: Uint32Array, b: Uint32Array): number {
  for (let k = 0; k < a.length; k++) {
    const x = a[k] as number;
    const y = b[k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Sorts ranges by start and merges overlapping and adjacent ones into flat start/end arrays. */
function merge(ranges: Range[], words: number): [Uint32Array, Uint32Array] {
  ranges.sort((a, b) => compareWords(a.start, b.start));
  const starts: Uint32Array[] = [];
  const ends: Uint32Array[] = [];
  for (const range of ranges) {
    const last = ends[ends.length - 1];
    if (last !== undefined && (compareWords(range.start, last) <= 0 || isNext(last, range.start))) {
      if (compareWords(range.end, last) > 0) ends[ends.length - 1] = range.end;
    } else {
      starts.push(range.start);
      ends.push(range.end);
    }
  }
  const flatStarts = new Uint32Array(starts.length * words);
  const flatEnds = new Uint32Array(ends.length * words);
  starts.forEach((s, i) => flatStarts.set(s, i * words));
  ends.forEach((e, i) => flatEnds.set(e, i * words));
  return [flatStarts, flatEnds];
}

/** True when `b` is `a` + 1. */
function isNext(a: Uint32Array, b: Uint32Array): boolean {
  let carry = 1;
  for (let k = a.length - 1; k >= 0; k--) {
    const sum = (a[k] as number) + carry;
    const word = sum >>> 0;
    carry = sum > 0xffffffff ? 1 : 0;
    if (word !== b[k]) return false;
  }
  return carry === 0;
}
