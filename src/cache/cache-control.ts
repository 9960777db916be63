/**
 * Cache-Control parsing (RFC 9111 §5.2): a comma-separated list of directives, each a token with
 * an optional `=token` or `="quoted string"` argument. Names are case-insensitive; when a
 * directive appears more than once, the first occurrence wins (§4.2.1).
 */

/** Directive name (lower case) → argument, or true when it has none. */
export type Directives = ReadonlyMap<string, string | true>;

const NONE: Directives = new Map();

export function parseCacheControl(value: string | readonly string[] | undefined): Directives {
  if (value === undefined) return NONE;
  const text = typeof value === 'string' ? value : value.join(',');
  if (text === '') return NONE;
  const out = new Map<string, string | true>();
  let i = 0;
  const n = text.length;
  while (i < n) {
    // Skip separators and whitespace.
    while (i < n && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break;
    let nameEnd = i;
    while (nameEnd < n && text[nameEnd] !== '=' && text[nameEnd] !== ',') nameEnd++;
    const name = text.slice(i, nameEnd).trim().toLowerCase();
    i = nameEnd;
    let arg: string | true = true;
    if (i < n && text[i] === '=') {
      i++;
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (text[i] === '"') {
        // quoted-string: backslash escapes the next character (RFC 9110 §5.6.4).
        let s = '';
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          s += text[i];
          i++;
        }
        i++; // closing quote
        arg = s;
        while (i < n && text[i] !== ',') i++;
      } else {
        let end = i;
        while (end < n && text[end] !== ',') end++;
        arg = text.slice(i, end).trim();
        i = end;
      }
    }
    if (name !== '' && !out.has(name)) out.set(name, arg);
  }
  return out;
}

/**
 * A delta-seconds argument (RFC 9111 §1.2.2): digits only. Undefined when the directive is absent,
 * -1 when it is present but not valid (callers treat that as stale). Values past 2^31 are capped.
 */
export function deltaSeconds(directives: Directives, name: string): number | undefined {
  const arg = directives.get(name);
  if (arg === undefined) return undefined;
  if (arg === true || !/^\d+$/.test(arg)) return -1;
  const value = Number(arg);
  return value > 2147483648 ? 2147483648 : value;
}

/** The field names of a qualified directive such as private="set-cookie, x-user" (lower case); empty when unqualified. */
export function qualifiedFields(directives: Directives, name: string): string[] {
  const arg = directives.get(name);
  if (arg === undefined || arg === true) return [];
  return arg
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter((f) => f !== '');
}
