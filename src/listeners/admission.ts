/**
 * The per-request part of protection, run by dispatch (and for Upgrade requests) before routing,
 * and only when something is configured (`protection.screen`) or someone is banned: the client's address behind a
 * trusted proxy, the global access rules where the connection guard could not decide at accept,
 * and bans.
 */
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { clientFromForwardedFor } from '../middleware/client-address.ts';
import { clientKey } from '../middleware/ip-filter/ip-address.ts';
import type { ProtectionPolicy } from '../middleware/protection.ts';
import type { ConnectionState } from './connection-guard.ts';
import { sendError } from './respond.ts';

/** Sets `ex.client` from X-Forwarded-For when the peer is a trusted proxy and a rule needs the client. */
export function resolveClient(ex: Exchange, conn: ConnectionState | undefined, policy: ProtectionPolicy): void {
  const trusted = policy.trusted;
  if (trusted === null) return;
  if (conn !== undefined ? !conn.forwarded : !trusted.has(ex.peer)) return;
  const xff = ex.req.headers['x-forwarded-for'];
  ex.client = clientFromForwardedFor(Array.isArray(xff) ? xff.join(', ') : xff, ex.peer, trusted);
}

/** True when the request may go on; otherwise it has been answered (the caller finishes it). */
export function screenRequest(ex: Exchange, conn: ConnectionState | undefined, policy: ProtectionPolicy): boolean {
  const state = policy.state;
  const forwarded = conn !== undefined ? conn.forwarded : ex.client !== ex.peer;
  if (conn?.denied === true) return forbid(ex, policy, true);
  const access = policy.access;
  // A connection the guard admitted is checked again only after the rules changed.
  if (access !== null && (conn === undefined || forwarded || conn.checkedGeneration !== state.accessGeneration)) {
    // From a trusted proxy, the connection carries other clients too: it stays open.
    if (!access.allows(ex.client)) return forbid(ex, policy, !forwarded);
    if (conn !== undefined && !forwarded) conn.checkedGeneration = state.accessGeneration;
  }
  if (state.bans.any) {
    const left = state.bans.remaining(clientKey(ex.client, policy.v6Prefix));
    if (left > 0) {
      state.counters.banned_requests++;
      if (!forwarded) ex.res.shouldKeepAlive = false;
      sendError(ex, new GatehouseError('TOO_MANY_REQUESTS'), { 'retry-after': String(Math.ceil(left / 1000)) });
      return false;
    }
  }
  return true;
}

function forbid(ex: Exchange, policy: ProtectionPolicy, close: boolean): boolean {
  policy.state.counters.denied_requests++;
  if (close) ex.res.shouldKeepAlive = false;
  sendError(ex, new GatehouseError('FORBIDDEN'));
  return false;
}
