/**
 * Reading a cookie or a query parameter straight from the raw header or query, without regular
 * expressions or parsing the whole thing: the hot path of hash balancing and sticky sessions.
 */

/** The value of cookie `name` in a Cookie header (RFC 6265 §5.4: "a=1; b=2"), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || name === '') return undefined;
  let from = 0;
  for (;;) {
    const at = header.indexOf(name, from);
    if (at === -1) return undefined;
    const eq = at + name.length;
    if (header.charCodeAt(eq) === 0x3d /* = */ && startsPair(header, at, 0x3b /* ; */)) {
      const end = header.indexOf(';', eq + 1);
      return header.slice(eq + 1, end === -1 ? header.length : end).trim();
    }
    from = at + 1;
  }
}

/** The raw (not decoded) value of parameter `name` in a query string without "?", or undefined. */
export function queryValue(query: string, name: string): string | undefined {
  if (query === '' || name === '') return undefined;
  let from = 0;
  for (;;) {
    const at = query.indexOf(name, from);
    if (at === -1) return undefined;
    const after = at + name.length;
    const next = query.charCodeAt(after);
    if ((at === 0 || query.charCodeAt(at - 1) === 0x26) /* & */ && (next === 0x3d /* = */ || next === 0x26 || Number.isNaN(next))) {
      if (next !== 0x3d) return '';
      const end = query.indexOf('&', after + 1);
      return query.slice(after + 1, end === -1 ? query.length : end);
    }
    from = at + 1;
  }
}

/** True when `at` begins a pair: at the start, or after the separator and optional spaces. */
function startsPair(text: string, at: number, separator: number): boolean {
  let i = at - 1;
  while (i >= 0 && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i--;
  return i < 0 || text.charCodeAt(i) === separator;
}

/** 32-bit FNV-1a with a murmur3 finaliser (so that close keys land far apart). No allocation. */
export function hashString(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
