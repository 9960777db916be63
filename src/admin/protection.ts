/**
 * The admin API's protection endpoints: active bans, lifting them, banning by hand.
 *   GET    /bans                    the active bans
 *   POST   /bans/{client}?duration= ban a client (an IP address; IPv6 by its protection.ipv6_prefix)
 *   DELETE /bans/{client}           lift one ban (and forget the client's history)
 *   DELETE /bans                    lift every ban
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { duration } from '../config/units.ts';
import type { ProtectionState } from '../core/protection-state.ts';
import { clientKey } from '../middleware/ip-filter/ip-address.ts';
import type { AdminAnswer } from './admin.ts';

/** What the endpoints need from the running proxy. */
export interface ProtectionAdmin {
  readonly state: ProtectionState;
  readonly v6Prefix: number;
}

export const PROTECTION_ENDPOINTS = ['GET /bans', 'POST /bans/{client}?duration=1h', 'DELETE /bans/{client}', 'DELETE /bans'];

/** The answer for a /bans request, or null when `path` is not one of these endpoints. */
export function handleBans(req: IncomingMessage, path: string, query: string, admin: ProtectionAdmin): AdminAnswer | null {
  const bans = admin.state.bans;
  if (path === '/bans') {
    if (req.method === 'GET') return { status: 200, body: { bans: bans.list(), issued: bans.issued } };
    if (req.method === 'DELETE') return { status: 200, body: { lifted: bans.liftAll() } };
    return null;
  }
  if (!path.startsWith('/bans/')) return null;
  const client = decodeURIComponent(path.slice('/bans/'.length));
  const key = keyOf(client, admin.v6Prefix);
  if (key === null) return { status: 400, body: { error: `"${client}" is not an IP address or client key` } };
  if (req.method === 'DELETE') {
    return bans.lift(key) ? { status: 200, body: { lifted: key } } : { status: 404, body: { error: `${key} is not banned` } };
  }
  if (req.method === 'POST') {
    const wanted = new URLSearchParams(query).get('duration') ?? '1h';
    const parsed = duration.safeParse(wanted);
    if (!parsed.success || parsed.data <= 0) return { status: 400, body: { error: `"${wanted}" is not a duration (use e.g. 30s, 10m, 1h)` } };
    const until = bans.ban(key, parsed.data);
    return { status: 200, body: { banned: key, duration_s: Math.ceil(parsed.data / 1000), until: new Date(until).toISOString() } };
  }
  return null;
}

/** An address becomes its client key (IPv6 by prefix); a key as listed ("2001:db8::/64") is taken as is. */
function keyOf(client: string, v6Prefix: number): string | null {
  if (isIP(client) !== 0) return clientKey(client, v6Prefix);
  const slash = client.indexOf('/');
  if (slash > 0 && isIP(client.slice(0, slash)) === 6) return client;
  return null;
}
