/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never forwarded.
 * Proxy-* headers are addressed to a proxy, so they stop here too.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** True for a lower-case header name that must not cross the proxy. */
export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName) || lowerName.startsWith('proxy-');
}

/**
 * The extra header names a Connection header lists (RFC 9110 §7.6.1), lower case; null when none.
 * Host is never one of them: it is end-to-end by definition (RFC 9112 §3.2) and the route was
 * chosen by it, so a client cannot have it dropped (the backend would then see its own address).
 */
export function connectionListed(value: string | string[] | undefined): Set<string> | null {
  // What nearly every backend and client sends: no split, no Set.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return null;
  const names = new Set<string>();
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '' && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade' && name !== 'host') names.add(name);
    }
  }
  return names.size > 0 ? names : null;
}
