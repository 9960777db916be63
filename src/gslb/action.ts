/**
 * The `gslb` route action: where the client is, which region serves it, then forward to that
 * region's upstream (proxy mode) or redirect to its host (redirect mode).
 *
 * Spill-over happens in two places: the pick skips regions that cannot take a request now, and
 * the attempt loop (upstream/forward.ts) asks `nextRegion` when a try failed on connect and the
 * region has no other server left, so a region that just died costs a retry, not an error.
 */
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { sendError, sendSimple } from '../listeners/respond.ts';
import type { HeaderOps } from '../middleware/headers.ts';
import type { ForwardAction } from '../routing/actions.ts';
import { forward } from '../upstream/forward.ts';
import type { GeoLocation } from './countries.ts';
import type { Gslb, Region } from './regions.ts';

export interface GslbAction {
  readonly kind: 'gslb';
  readonly gslb: Gslb;
  /** Proxy mode: one forward action per region (by region index), with the route's path and header edits. */
  readonly forwards: readonly ForwardAction[];
  readonly responseHeaders: HeaderOps | null;
}

/** A request's GSLB state: where the client is, the region serving it, the regions tried. */
export class GslbChoice {
  readonly action: GslbAction;
  readonly location: GeoLocation | null;
  region: Region;
  /** Bits by region index. */
  tried = 0;

  constructor(action: GslbAction, location: GeoLocation | null, region: Region) {
    this.action = action;
    this.location = location;
    this.region = region;
  }
}

/** Runs the action: the request is answered (or forwarded) and finished by the time it returns or later. */
export function runGslb(ex: Exchange, action: GslbAction, finish: (ex: Exchange) => void): void {
  const redirect = action.gslb.mode === 'redirect';
  // Redirect mode never sends a client to a region that cannot serve; proxy mode falls back to the
  // nearest allowed region, whose upstream answers 503 with Retry-After.
  const region = choose(ex, action, redirect);
  if (region === null) {
    sendError(ex, new GatehouseError('NO_SERVER'));
    finish(ex);
    return;
  }
  // The region header goes out with the head (core/response-fields.ts).
  if (redirect) {
    // 307 keeps the method and body (RFC 9110 §15.4.8); the path and query go along.
    sendSimple(ex, 307, '', { location: `${ex.proto}://${region.host as string}${ex.req.url as string}` }, action.responseHeaders);
    finish(ex);
    return;
  }
  forward(ex, action.forwards[region.index] as ForwardAction, finish);
}

/**
 * A WebSocket on a gslb route in proxy mode: the chosen region's forward action (a tunnel is
 * placed once, so the pick alone skips regions that cannot serve); null in redirect mode.
 */
export function tunnelAction(ex: Exchange, action: GslbAction): ForwardAction | null {
  if (action.gslb.mode !== 'proxy') return null;
  const region = choose(ex, action, false);
  return region === null ? null : (action.forwards[region.index] as ForwardAction);
}

/** The request's region (see Gslb.pick), kept on the exchange and counted; null when none is allowed. */
function choose(ex: Exchange, action: GslbAction, usableOnly: boolean): Region | null {
  const gslb = action.gslb;
  const location = gslb.locate(ex.client);
  const region = gslb.pick(location, 0, usableOnly);
  if (region === null) return null;
  ex.gslb = new GslbChoice(action, location, region);
  gslb.count(region);
  return region;
}

/**
 * The attempt loop's spill-over: the next usable region for this request (never one that
 * residency forbids, never one tried), or null. The region header and counters follow.
 */
export function nextRegion(ex: Exchange): ForwardAction | null {
  const choice = ex.gslb;
  if (choice === null) return null;
  choice.tried |= 1 << choice.region.index;
  const gslb = choice.action.gslb;
  const region = gslb.pick(choice.location, choice.tried, true);
  if (region === null) return null;
  choice.region = region;
  region.counters.requests++;
  region.counters.spilled++;
  return choice.action.forwards[region.index] as ForwardAction;
}
