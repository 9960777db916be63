/**
 * Sticky sessions: a cookie, set by the proxy, that pins a client to the server that answered it
 * while that server can take traffic. The cookie's value is an HMAC of the upstream and server
 * under a secret: it names no backend, cannot be forged for another server, and, being fixed per
 * server, is computed once per snapshot, so checking it is one map look-up and no cryptography.
 */
import { createHmac } from 'node:crypto';
import type { UpstreamConfig } from '../config/schema.ts';
import type { Exchange } from '../core/exchange.ts';
import { cookieValue } from './request-keys.ts';
import type { Server } from './server.ts';

type StickyConfig = NonNullable<UpstreamConfig['sticky']>;

export class StickyCookies {
  readonly #name: string;
  readonly #byToken = new Map<string, Server>();
  /** Set-Cookie values per server, for http and for https clients (which also get Secure). */
  readonly #plain = new Map<Server, string>();
  readonly #secure = new Map<Server, string>();

  constructor(config: StickyConfig, upstream: string, servers: readonly Server[], defaultSecret: Buffer) {
    this.#name = config.cookie;
    const secret = config.secret ?? defaultSecret;
    let attributes = `; Path=/; HttpOnly; SameSite=${config.same_site}`;
    if (config.max_age !== undefined) attributes += `; Max-Age=${Math.floor(config.max_age / 1000)}`;
    // SameSite=None is only accepted with Secure (RFC 6265bis §5.4.7).
    const plainAttributes = config.same_site === 'None' ? `${attributes}; Secure` : attributes;
    for (const server of servers) {
      const token = createHmac('sha256', secret).update(`${upstream}\n${server.origin}`).digest('base64url').slice(0, 22);
      this.#byToken.set(token, server);
      this.#plain.set(server, `${config.cookie}=${token}${plainAttributes}`);
      this.#secure.set(server, `${config.cookie}=${token}${attributes}${config.same_site === 'None' ? '' : '; Secure'}`);
    }
  }

  /** The server the client's cookie pins it to, if the cookie is present and genuine. */
  find(ex: Exchange): Server | undefined {
    const token = cookieValue(ex.req.headers.cookie, this.#name);
    return token === undefined ? undefined : this.#byToken.get(token);
  }

  /** Adds the Set-Cookie that pins the client to `server` to the response headers. */
  pin(headers: Record<string, string | string[]>, server: Server, proto: string): void {
    const cookie = (proto === 'https' ? this.#secure : this.#plain).get(server);
    if (cookie === undefined) return;
    const existing = headers['set-cookie'];
    headers['set-cookie'] = existing === undefined ? cookie : Array.isArray(existing) ? [...existing, cookie] : [existing, cookie];
  }
}
