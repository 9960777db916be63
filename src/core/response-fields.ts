/**
 * Fields Gatehouse adds to every answer it writes, forwarded or its own: the request id (tracing),
 * on gslb routes the region that served it, and on TLS listeners with `hsts` the
 * Strict-Transport-Security field. Added where a head is written rather than set on the response
 * up front: a field set before writeHead sends every other field through setHeader's checks (see
 * tracing/request-id.ts), and takes cache hits off their pre-serialised head
 * (listeners/serialized-head.ts).
 */
import type { Exchange } from './exchange.ts';
import { addRequestId, pushRequestId, requestIdLine } from './tracing/request-id.ts';

/** A listener's Strict-Transport-Security field (RFC 6797 §6.1), made once per listener and reload. */
export interface HstsField {
  /** The field value, e.g. "max-age=31536000; includeSubDomains". */
  readonly value: string;
  /** The same as a head line ("strict-transport-security: value\r\n"), for serialised heads. */
  readonly line: string;
}

const HSTS = 'strict-transport-security';

/** The field for `value` (valid on the wire: made from numbers and fixed words). */
export function hstsField(value: string): HstsField {
  return { value, line: `${HSTS}: ${value}\r\n` };
}

/**
 * Adds the fields to a header record (lower-case names). Strict-Transport-Security is a default,
 * as Caddy's `?Strict-Transport-Security`, not nginx's `add_header … always` (which adds a second
 * field beside the backend's, and RFC 6797 §8.1 has the browser read only the first): one already
 * there, the backend's or a route's `response_headers`, is kept, since it may mean something else
 * on purpose (max-age=0 withdraws HSTS).
 */
export function addResponseFields(ex: Exchange, headers: Record<string, string | string[]>): void {
  addRequestId(ex, headers);
  const region = regionHeader(ex);
  if (region !== null) headers[region] = regionName(ex);
  const hsts = ex.hsts;
  if (hsts !== null && headers[HSTS] === undefined) headers[HSTS] = hsts.value;
}

/**
 * Appends the fields to a flat [name, value, ...] list of an answer from the cache, and returns
 * the list; `hasHsts`: the list already carries a Strict-Transport-Security field (the stored one).
 */
export function pushResponseFields(ex: Exchange, flat: string[], hasHsts: boolean): string[] {
  pushRequestId(ex, flat);
  const region = regionHeader(ex);
  if (region !== null) flat.push(region, regionName(ex));
  const hsts = ex.hsts;
  if (hsts !== null && !hasHsts) flat.push(HSTS, hsts.value);
  return flat;
}

/** The fields as head lines, to follow a stored head's serialised lines (`hasHsts` as above); '' when none. */
export function responseFieldLines(ex: Exchange, hasHsts: boolean): string {
  let lines = requestIdLine(ex);
  // Both valid on the wire: the schema allows header names and region names of token characters only.
  const region = regionHeader(ex);
  if (region !== null) lines += `${region}: ${regionName(ex)}\r\n`;
  const hsts = ex.hsts;
  return hsts === null || hasHsts ? lines : lines + hsts.line;
}

/** The field naming the region on gslb routes that send it, or null. */
function regionHeader(ex: Exchange): string | null {
  return ex.gslb === null ? null : ex.gslb.action.gslb.regionHeader;
}

/** The region that answers: after a spill-over, the one the request moved to (gslb routes only). */
function regionName(ex: Exchange): string {
  return ex.gslb?.region.name ?? '';
}
