/**
 * Response rewriting that hides the backend: hop-by-hop headers go, identifying headers go,
 * and absolute URLs or cookie domains that name a backend are turned to the public host
 * (as nginx's proxy_redirect default and proxy_cookie_domain do).
 */
import type { Config } from '../config/schema.ts';
import { connectionListed, isHopByHop } from '../transport/hop-by-hop.ts';
import { checkResponseFraming } from '../transport/response-framing.ts';
import type { Upstream } from './upstream.ts';

/** The compiled response-hiding settings of a snapshot. */
export interface ResponseHiding {
  readonly remove: ReadonlySet<string>;
  readonly rewriteLocation: boolean;
  readonly rewriteCookieDomain: boolean;
  /** The Via element added to responses; null when off. */
  readonly via: string | null;
}

export function compileHiding(config: Config): ResponseHiding {
  return {
    remove: new Set(config.hide_backend.remove_response_headers.map((h) => h.toLowerCase())),
    rewriteLocation: config.hide_backend.rewrite_location,
    rewriteCookieDomain: config.hide_backend.rewrite_cookie_domain,
    // Responses come from servers over HTTP/1.1.
    via: config.forwarded.via.response ? `1.1 ${config.forwarded.via.pseudonym}` : null,
  };
}

type HeaderValue = string | string[];

/**
 * Returns the headers to send downstream. `headers` comes from the transport, lower-case names;
 * `proto` and `host` are what the client used (host may carry a port).
 */
export function rewriteResponseHeaders(
  headers: Record<string, HeaderValue | undefined>,
  hiding: ResponseHiding,
  upstream: Upstream,
  proto: string,
  host: string | undefined,
): Record<string, HeaderValue> {
  checkResponseFraming(headers);
  const listed = connectionListed(headers['connection']);
  const out: Record<string, HeaderValue> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name) || hiding.remove.has(name) || listed?.has(name)) continue;
    if ((name === 'location' || name === 'content-location') && hiding.rewriteLocation && typeof value === 'string') {
      out[name] = rewriteUrl(value, upstream, proto, host);
    } else if (name === 'set-cookie' && hiding.rewriteCookieDomain && host !== undefined) {
      out[name] = Array.isArray(value)
        ? value.map((c) => rewriteCookieDomain(c, upstream, host))
        : rewriteCookieDomain(value, upstream, host);
    } else {
      out[name] = value;
    }
  }
  if (hiding.via !== null) {
    const earlier = out['via'];
    out['via'] = earlier === undefined ? hiding.via : `${Array.isArray(earlier) ? earlier.join(', ') : earlier}, ${hiding.via}`;
  }
  return out;
}

/** http://backend:3000/x → {proto}://{public host}/x when the URL names one of the upstream's servers. */
export function rewriteUrl(value: string, upstream: Upstream, proto: string, host: string | undefined): string {
  if (host === undefined) return value;
  const match = /^(https?):\/\/([^/?#]+)/i.exec(value);
  if (match === null) return value;
  const authority = (match[2] as string).toLowerCase();
  // Servers are keyed by URL.host, which leaves out port 80: "backend:80" is "backend". An https
  // URL without a port names port 443, keyed "backend:443" for a server http://backend:443.
  const bare = authority.endsWith(':80') ? authority.slice(0, -3) : authority;
  const withDefaultPort = match[1]?.toLowerCase() === 'https' ? `${authority}:443` : bare;
  if (!upstream.backendAuthorities.has(bare) && !upstream.backendAuthorities.has(withDefaultPort)) return value;
  return `${proto}://${host}${value.slice(match[0].length)}`;
}

/** Domain=backend → Domain=public host (without port); other cookies pass unchanged. */
export function rewriteCookieDomain(cookie: string, upstream: Upstream, publicHost: string): string {
  return cookie.replace(/(;\s*domain=)\.?([^;]*)/i, (whole, prefix: string, domain: string) => {
    if (!upstream.backendHostnames.has(domain.trim().toLowerCase())) return whole;
    return `${prefix}${hostnameOf(publicHost)}`;
  });
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
