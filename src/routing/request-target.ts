/**
 * The request target and Host (RFC 9112 §3.2): a Host must be a valid authority, and an
 * absolute-form target ("GET http://example.com/x") is accepted when it names the same authority
 * as Host and turned into origin-form ("/x"), so that the route and the backend see one host and
 * one path; when the two disagree the request is refused, since a backend could read either.
 */

/** Characters of a reg-name or IPv4address (RFC 3986 §3.2.2): unreserved, pct-encoded, sub-delims. */
const HOST_CHARS = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=") HOST_CHARS[c.charCodeAt(0)] = 1;
/** Characters of an IP-literal's inside ("[2001:db8::1]"). */
const LITERAL_CHARS = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF:.') LITERAL_CHARS[c.charCodeAt(0)] = 1;

/** RFC 9112 §3.2 / RFC 3986 §3.2: host [":" port]; an empty Host is valid. */
export function isValidHost(host: string): boolean {
  const n = host.length;
  let i = 0;
  if (host.charCodeAt(0) === 0x5b) {
    const close = host.indexOf(']');
    if (close < 2) return false;
    for (i = 1; i < close; i++) if (LITERAL_CHARS[host.charCodeAt(i)] !== 1) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = host.charCodeAt(i);
      if (c === 0x3a) break;
      if (c >= 128 || HOST_CHARS[c] !== 1) return false;
    }
  }
  if (i === n) return true;
  if (host.charCodeAt(i) !== 0x3a || n - i - 1 > 5) return false;
  for (i++; i < n; i++) {
    const c = host.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** RFC 9112 §3.2: more than one Host line is refused (node:http keeps only the first in `headers`). */
export function hasSecondHost(rawHeaders: readonly string[]): boolean {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return true;
  }
  return false;
}

/**
 * "http://Host:80/x?y" → "/x?y" when the authority matches `host` (case-insensitive, default port
 * ignored); null when it does not, when there is no Host, when the scheme is not http(s), or when
 * the authority carries userinfo (RFC 9110 §4.2.4).
 */
export function originForm(target: string, host: string | undefined): string | null {
  if (host === undefined) return null;
  const sep = target.indexOf('://');
  if (sep === -1) return null;
  const scheme = target.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  const start = sep + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x2f || c === 0x3f) break;
    end++;
  }
  const authority = target.slice(start, end);
  if (authority === '' || authority.includes('@') || !isValidHost(authority)) return null;
  const port = scheme === 'https' ? ':443' : ':80';
  if (withoutDefaultPort(authority.toLowerCase(), port) !== withoutDefaultPort(host.toLowerCase(), port)) return null;
  const rest = target.slice(end);
  return rest === '' ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
}

function withoutDefaultPort(authority: string, port: string): string {
  return authority.endsWith(port) ? authority.slice(0, -port.length) : authority;
}
