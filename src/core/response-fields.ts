/**
 * Fields Gatehouse adds to every answer it writes, forwarded or its own: the request id (tracing)
 * and, on gslb routes, the region that served it. Added where a head is written rather than set
 * on the response up front: a field set before writeHead sends every other field through
 * setHeader's checks (see tracing/request-id.ts).
 */
import type { Exchange } from './exchange.ts';
import { addRequestId } from './tracing/request-id.ts';

/** Adds the fields to a header record. */
export function addResponseFields(ex: Exchange, headers: Record<string, string | string[]>): void {
  addRequestId(ex, headers);
  const choice = ex.gslb;
  if (choice !== null) {
    // The region that answers: after a spill-over, the one the request moved to.
    const name = choice.action.gslb.regionHeader;
    if (name !== null) headers[name] = choice.region.name;
  }
}
