import type { Pool } from 'undici';

/** One backend address in an upstream, with the counters the balancer and the admin API read. */
export class Server {
  /** The configured URL's origin, e.g. http://127.0.0.1:3000. */
  readonly origin: string;
  /** host:port as a backend would put it in absolute URLs. */
  readonly authority: string;
  /** The host name alone, as a backend would put it in a cookie Domain. */
  readonly hostname: string;
  readonly weight: number;
  readonly pool: Pool;
  /** The registry key of the pool. */
  readonly poolKey: string;
  inFlight = 0;
  requests = 0;
  failures = 0;

  constructor(url: URL, weight: number, pool: Pool, poolKey: string) {
    this.origin = url.origin;
    this.authority = url.host;
    this.hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.weight = weight;
    this.pool = pool;
    this.poolKey = poolKey;
  }
}
