/**
 * One normal form of the request path, used both to choose the route and as the path sent
 * upstream, so that a rule cannot be walked around by spelling the same path differently
 * (/%61dmin, /./admin, //admin, /public/../admin all become /admin):
 *
 * - percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2), other encodings get
 *   upper-case hex (§6.2.2.1); a bad "%" sequence, or an encoded control character, is refused;
 * - "." and ".." segments are resolved (RFC 3986 §5.2.4), including encoded ones (%2e%2e);
 * - "//" is merged into "/" (`merge_slashes`, as nginx does);
 * - "%2F" is refused, decoded into a separator or kept as data (`encoded_slashes`);
 * - "\" and "%5C", which some servers read as "/", are refused or kept (`backslashes`);
 * - a fragment ("#") has no place in a request target (RFC 9112 §3.2) and is refused.
 *
 * The query is left as it is. Most paths need none of this: one scan finds nothing to do and
 * returns the input itself, without allocating.
 */

/** The compiled `protection.paths` settings. */
export interface PathPolicy {
  readonly mergeSlashes: boolean;
  readonly encodedSlashes: 'reject' | 'decode' | 'keep';
  readonly backslashes: 'reject' | 'keep';
}

/**
 * Returns `target` (an origin-form "/path?query") itself when its path is already normal, a
 * normalised copy, or null when it must be refused (400). A target not starting with "/" is
 * returned unchanged (the caller refuses it).
 */
export function normalizeTarget(target: string, policy: PathPolicy): string | null {
  if (target.charCodeAt(0) !== 0x2f) return target;
  const n = target.length;
  for (let i = 0; i < n; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f) return target.indexOf('#', i) === -1 ? target : null;
    if (c === 0x25 || c === 0x5c || c === 0x23) return normalizeSlow(target, policy);
    if (c === 0x2f) {
      const d = target.charCodeAt(i + 1);
      if (d === 0x2f) {
        if (policy.mergeSlashes) return normalizeSlow(target, policy);
      } else if (d === 0x2e && isDotSegment(target, i + 1)) {
        return normalizeSlow(target, policy);
      }
    }
  }
  return target;
}

/** True when the segment starting at `i` is "." or ".." ("/.well-known" is not). */
function isDotSegment(s: string, i: number): boolean {
  let j = i + 1;
  if (s.charCodeAt(j) === 0x2e) j++;
  return j >= s.length || s.charCodeAt(j) === 0x2f || s.charCodeAt(j) === 0x3f;
}

const HEX = '0123456789ABCDEF';

function normalizeSlow(target: string, policy: PathPolicy): string | null {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  if (query.includes('#')) return null;
  const segments: string[] = [];
  let segment = '';
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length) {
      endSegment(segments, segment, true, policy);
      break;
    }
    const c = path.charCodeAt(i);
    if (c === 0x2f) {
      endSegment(segments, segment, false, policy);
      segment = '';
    } else if (c === 0x23) {
      return null;
    } else if (c === 0x5c) {
      if (policy.backslashes === 'reject') return null;
      segment += '\\';
    } else if (c === 0x25) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return null;
      i += 2;
      const byte = hi * 16 + lo;
      if (byte < 0x20 || byte === 0x7f) return null;
      if (isUnreserved(byte)) {
        segment += String.fromCharCode(byte);
      } else if (byte === 0x2f) {
        if (policy.encodedSlashes === 'reject') return null;
        if (policy.encodedSlashes === 'decode') {
          endSegment(segments, segment, false, policy);
          segment = '';
        } else {
          segment += '%2F';
        }
      } else if (byte === 0x5c && policy.backslashes === 'reject') {
        return null;
      } else {
        segment += `%${HEX[hi]}${HEX[lo]}`;
      }
    } else {
      segment += path[i];
    }
  }
  const normal = `/${segments.join('/')}${query}`;
  return normal === target ? target : normal;
}

/** RFC 3986 §5.2.4 remove_dot_segments, one segment at a time. */
function endSegment(segments: string[], segment: string, last: boolean, policy: PathPolicy): void {
  if (segment === '.' || segment === '..') {
    if (segment === '..') segments.pop();
    // "/a/." and "/a/b/.." name a folder: the result keeps its trailing slash.
    if (last) segments.push('');
    return;
  }
  if (segment === '' && !last && policy.mergeSlashes) return;
  segments.push(segment);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}
