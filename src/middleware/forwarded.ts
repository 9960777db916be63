/**
 * X-Forwarded-* and RFC 7239 Forwarded headers: tell the backend who the client is, trusting what
 * an earlier hop wrote only when that hop is a configured trusted proxy.
 */
import { isIPv6 } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { IpSet } from './ip-filter/ip-set.ts';

/** The compiled forwarding settings of a snapshot. */
export interface ForwardingPolicy {
  readonly xForwarded: boolean;
  readonly forwarded: boolean;
  /** Null when no proxy is trusted, so the hot path skips the lookup. */
  readonly trusted: IpSet | null;
  /** The Via element added to requests received over HTTP/1.1 and over HTTP/2; null when off. */
  readonly viaH1: string | null;
  readonly viaH2: string | null;
}

/** `trusted` is the protection rules' set of trusted_proxies (ProtectionPolicy.trusted), compiled once. */
export function compileForwarding(config: Config, trusted: IpSet | null): ForwardingPolicy {
  const via = config.forwarded.via;
  return {
    xForwarded: config.forwarded.x_forwarded,
    forwarded: config.forwarded.forwarded,
    trusted,
    // RFC 9110 §7.6.3: the protocol the request was received with ("HTTP/" left out), then who received it.
    viaH1: via.request ? `1.1 ${via.pseudonym}` : null,
    viaH2: via.request ? `2 ${via.pseudonym}` : null,
  };
}

/** The peer address without the IPv4-mapped IPv6 prefix. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function isTrusted(policy: ForwardingPolicy, peer: string): boolean {
  return policy.trusted !== null && policy.trusted.has(peer);
}

/** What the incoming request said about earlier hops (only read when the peer is trusted). */
export interface IncomingForwarded {
  xff: string | undefined;
  proto: string | undefined;
  host: string | undefined;
  forwarded: string | undefined;
}

/**
 * Appends the forwarding headers to `out` (a flat [name, value, ...] list).
 * `incoming` holds the earlier hops' values, already dropped when the peer is not trusted.
 */
export function appendForwarded(
  out: string[],
  policy: ForwardingPolicy,
  peer: string,
  proto: string,
  host: string | undefined,
  incoming: IncomingForwarded | null,
): void {
  if (policy.xForwarded) {
    out.push('x-forwarded-for', incoming?.xff ? `${incoming.xff}, ${peer}` : peer);
    out.push('x-forwarded-proto', incoming?.proto ?? proto);
    const fwdHost = incoming?.host ?? host;
    if (fwdHost !== undefined) out.push('x-forwarded-host', fwdHost);
  }
  if (policy.forwarded) {
    const node = isIPv6(peer) ? `"[${peer}]"` : peer || 'unknown';
    let element = `for=${node};proto=${proto}`;
    if (host !== undefined) element += `;host=${quoteIfNeeded(host)}`;
    out.push('forwarded', incoming?.forwarded ? `${incoming.forwarded}, ${element}` : element);
  }
}

// RFC 7239 §4: a value that is not a token must be a quoted string (a host with a port has ':').
function quoteIfNeeded(value: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}
