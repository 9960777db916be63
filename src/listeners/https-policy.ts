/**
 * What a listener's `redirect_https` and `hsts` settings do to each request, compiled once per
 * listener and reload: plain listeners may send every request to https (308, RFC 9110 §15.4.9,
 * keeps the method and body), TLS listeners may add Strict-Transport-Security (RFC 6797).
 */
import type { ListenConfig } from '../config/schema.ts';
import type { HstsConfig } from '../config/listener-schema.ts';
import { hstsField, type HstsField } from '../core/response-fields.ts';
import type { RequestInfo } from '../routing/request-info.ts';
import { CHALLENGE_PREFIX } from './tls/acme/http-01.ts';

export interface HttpsPolicy {
  /** ":8443" for a port other than 443, '' for 443; null when plain requests are served as they are. */
  readonly redirectPort: string | null;
  /** The Strict-Transport-Security field, or null for none. */
  readonly hsts: HstsField | null;
}

export const NO_HTTPS_POLICY: HttpsPolicy = { redirectPort: null, hsts: null };

export function compileHttpsPolicy(listen: ListenConfig): HttpsPolicy {
  const redirect = listen.redirect_https;
  const redirectPort = redirect === false ? null : redirect === true || redirect.port === 443 ? '' : `:${redirect.port}`;
  const hsts = listen.hsts === false ? null : hstsField(hstsValue(listen.hsts));
  return redirectPort === null && hsts === null ? NO_HTTPS_POLICY : { redirectPort, hsts };
}

/** RFC 6797 §6.1: max-age in seconds, then the optional directives. */
function hstsValue(config: HstsConfig): string {
  let value = `max-age=${Math.floor(config.max_age / 1000)}`;
  if (config.include_subdomains) value += '; includeSubDomains';
  if (config.preload) value += '; preload';
  return value;
}

/** The https URL for a plain request, or null when it is served here (no redirect, an ACME challenge, no Host). */
export function httpsRedirectTarget(policy: HttpsPolicy, info: RequestInfo, url: string): string | null {
  // HTTP-01 challenges must be answered over plain HTTP (RFC 8555 §8.3), whatever the redirect says.
  if (policy.redirectPort === null || info.host === '' || info.path.startsWith(CHALLENGE_PREFIX)) return null;
  return `https://${info.host}${policy.redirectPort}${url}`;
}
