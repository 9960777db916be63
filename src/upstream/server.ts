import type { Pool } from 'undici';
import { ServerState, type ServerPolicy, type StateOwner } from './server-state.ts';

/** What a server needs from its upstream. */
export interface ServerGroup {
  readonly policy: ServerPolicy;
  /** The servers that can take traffic may have changed. */
  serverChanged(): void;
  /** Whether one more server may be ejected now (max_ejection_percent). */
  mayEject(): boolean;
}

/** Per-server settings besides the weight. */
export interface ServerOptions {
  /** Used only while no primary server is available. */
  readonly backup: boolean;
  /** Drained by the configuration. */
  readonly drain: boolean;
  /** Most requests in flight at once (0: no limit). */
  readonly maxInFlight: number;
}

const DEFAULT_OPTIONS: ServerOptions = { backup: false, drain: false, maxInFlight: 0 };
const NO_GROUP: ServerGroup = {
  policy: { health: null, outlier: null, slowStartMs: 0 },
  serverChanged: () => {},
  mayEject: () => false,
};

/**
 * One backend address in an upstream, as one snapshot configured it (weight, pool, options). Its
 * runtime state (counters, health) is a ServerState shared with the other snapshots' Servers for
 * the same address, so that it survives reloads.
 */
export class Server implements StateOwner {
  /** The configured URL's origin, e.g. http://127.0.0.1:3000. */
  readonly origin: string;
  /** host:port as a backend would put it in absolute URLs. */
  readonly authority: string;
  /** The host name alone, as a backend would put it in a cookie Domain. */
  readonly hostname: string;
  /**
   * Passed on every dispatch as undici's `servername`: one constant name per pool, or undici would
   * take one from each client's Host header and close TLS connections when it changes. The name
   * actually sent in SNI is decided by the pool's connector (src/transport/pool.ts).
   */
  readonly servername: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly drain: boolean;
  readonly maxInFlight: number;
  readonly pool: Pool;
  /** The registry key of the pool. */
  readonly poolKey: string;
  readonly state: ServerState;
  #group: ServerGroup = NO_GROUP;

  constructor(url: URL, weight: number, pool: Pool, poolKey: string, state?: ServerState, options: ServerOptions = DEFAULT_OPTIONS) {
    this.state = state ?? new ServerState('', url);
    // The state already derived these from the same URL.
    this.origin = this.state.origin;
    this.authority = this.state.authority;
    this.hostname = this.state.hostname;
    this.servername = this.state.hostname;
    this.weight = weight;
    this.backup = options.backup;
    this.drain = options.drain;
    this.maxInFlight = options.maxInFlight;
    this.pool = pool;
    this.poolKey = poolKey;
  }

  /** Joins the upstream and starts sharing the state (called once the upstream can take notifications). */
  join(group: ServerGroup): void {
    this.#group = group;
    this.state.attach(this);
  }

  leave(): void {
    this.state.detach(this);
  }

  get policy(): ServerPolicy {
    return this.#group.policy;
  }

  changed(): void {
    this.#group.serverChanged();
  }

  mayEject(): boolean {
    return this.#group.mayEject();
  }

  /** At its max_in_flight: skipped until a request finishes. */
  get full(): boolean {
    return this.maxInFlight > 0 && this.state.inFlight >= this.maxInFlight;
  }
}
