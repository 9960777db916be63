/**
 * The client address that access rules, rate limits and bans apply to: the connection's peer (or
 * the address a PROXY protocol header gave), or, only when that peer is a trusted proxy, the
 * address X-Forwarded-For names. The chain is read right to left, skipping trusted proxies, as
 * nginx's real_ip_recursive does: the first untrusted hop is the client. Anything to its left was
 * written by the client itself and is ignored, so a client cannot choose its own address.
 */
import { isIP } from 'node:net';
import { normalizeAddress } from './forwarded.ts';
import type { IpSet } from './ip-filter/ip-set.ts';

export function clientFromForwardedFor(xff: string | undefined, peer: string, trusted: IpSet): string {
  if (xff === undefined) return peer;
  let client = peer;
  let end = xff.length;
  while (end > 0) {
    const comma = xff.lastIndexOf(',', end - 1);
    const entry = xff.slice(comma + 1, end).trim();
    // A malformed hop ends the walk: the last address a trusted hop vouched for stands.
    if (isIP(entry) === 0) break;
    client = normalizeAddress(entry);
    if (!trusted.has(entry)) break;
    end = comma;
  }
  return client;
}
