/**
 * The request id response field, added where a response head is written (the forwarded answer,
 * the proxy's own answers, cache hits) rather than set on the response up front: a field set
 * before writeHead sends every other field through setHeader's checks, and takes cache hits off
 * their pre-serialised head (listeners/serialized-head.ts). The id is checked visible ASCII
 * (policy.ts) and the name a token, so they go into a head as they are.
 */
import type { Exchange } from '../exchange.ts';

/** Adds the field to a header record. */
export function addRequestId(ex: Exchange, headers: Record<string, string | string[]>): void {
  const name = ex.snapshot.tracing.requestIdHeader;
  if (name !== null && ex.requestId !== '') headers[name] = ex.requestId;
}

/** Appends the field to a flat [name, value, ...] list, and returns the list. */
export function pushRequestId(ex: Exchange, flat: string[]): string[] {
  const name = ex.snapshot.tracing.requestIdHeader;
  if (name !== null && ex.requestId !== '') flat.push(name, ex.requestId);
  return flat;
}

/** The field as a head line ("name: value\r\n"), or ''. */
export function requestIdLine(ex: Exchange): string {
  const name = ex.snapshot.tracing.requestIdHeader;
  return name !== null && ex.requestId !== '' ? `${name}: ${ex.requestId}\r\n` : '';
}
