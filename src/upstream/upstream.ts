import { isHttpsUrl, type UpstreamConfig } from '../config/schema.ts';
import type { Exchange } from '../core/exchange.ts';
import type { Registry } from '../core/registry.ts';
import { BackendTlsFileError, DEFAULT_BACKEND_TLS, readBackendTls, type BackendTls } from '../config/backend-tls-files.ts';
import { optionsForOrigin, poolOptionsOf } from '../transport/pool.ts';
import type { Balancer } from './balancers/balancer.ts';
import { compileHashKey } from './balancers/hash-key.ts';
import { BALANCERS } from './balancers/index.ts';
import { compileHealth } from './health/index.ts';
import { compileOutlier, ejectionCap } from './health/outlier.ts';
import { compileRetry, type RetryPolicy } from './retry.ts';
import { Server, type ServerGroup } from './server.ts';
import { ServerState, type ServerPolicy } from './server-state.ts';
import { StickyCookies } from './sticky.ts';
import { UpstreamState, type CircuitBreaker } from './upstream-state.ts';

/** What the attempt loop tells `choose` about the request being placed. */
export interface Attempt {
  /** True for a server this request already tried. */
  tried(server: Server): boolean;
  /** Set by `choose`: the server came from the client's sticky cookie (no new cookie is needed). */
  pinned: boolean;
}

/**
 * A named pool of servers with its balancer, health, retry and circuit-breaking settings, as one
 * snapshot compiled them. The state that must outlive a reload (per-server health and load, the
 * upstream's in-flight count, queue and retry budget) is shared through the registry.
 */
export class Upstream implements ServerGroup {
  readonly name: string;
  /** Every configured server, in configuration order. */
  readonly servers: readonly Server[];
  readonly balance: string;
  readonly balancer: Balancer;
  /** The servers speak HTTP/2 (protocol h2 or h2c): a client's `TE: trailers` is passed on, WebSocket refused. */
  readonly http2: boolean;
  /** Time to wait for response headers, per try, ms. */
  readonly headersTimeout: number;
  /** Longest silence while the body streams, ms. */
  readonly bodyTimeout: number;
  /** Lower-case backend authorities and host names, for Location and cookie rewriting. */
  readonly backendAuthorities: ReadonlySet<string>;
  readonly backendHostnames: ReadonlySet<string>;
  readonly policy: ServerPolicy;
  readonly retry: RetryPolicy;
  readonly breaker: CircuitBreaker;
  readonly sticky: StickyCookies | null;
  /** Shared with the other snapshots' upstreams of this name. */
  readonly state: UpstreamState;
  /** The servers that take traffic now: the available primaries, or the available backups when none is. */
  #available: readonly Server[] = [];
  readonly #primaries: readonly Server[];
  readonly #backups: readonly Server[];
  readonly #stateKey: string;
  /** True while no primary is available and the backups take the traffic. */
  #onBackups = false;
  #ready = false;

  constructor(name: string, config: UpstreamConfig, registry: Registry) {
    this.name = name;
    this.balance = config.balance;
    this.http2 = config.protocol !== 'http1';
    const tls = backendTls(name, config, registry);
    this.policy = {
      health: compileHealth(config.health_check, { tls: tls ?? DEFAULT_BACKEND_TLS, http2: this.http2 }),
      outlier: compileOutlier(config.outlier_detection),
      // Hashing keeps full weights: a changing weight would move keys.
      slowStartMs: config.balance === 'hash' ? 0 : config.slow_start,
    };
    this.retry = compileRetry(config.retries);
    this.breaker = {
      maxInFlight: config.circuit_breaker.max_in_flight,
      maxQueued: config.circuit_breaker.max_queued,
      queueTimeoutMs: config.circuit_breaker.queue_timeout,
    };
    const options = poolOptionsOf(config, tls);
    const logger = registry.logger;
    this.servers = config.servers.map((s) => {
      const url = new URL(s.url);
      const { key, pool } = registry.acquirePool(url.origin, optionsForOrigin(url, options));
      const state = registry.acquireShared(serverStateKey(name, url.origin), () => new ServerState(name, url, logger, registry.healthSharing));
      return new Server(url, s.weight, pool, key, state, { backup: s.backup, drain: s.drain, maxInFlight: s.max_in_flight });
    });
    this.#primaries = this.servers.filter((s) => !s.backup);
    this.#backups = this.servers.filter((s) => s.backup);
    const factory = BALANCERS[config.balance];
    if (factory === undefined) throw new Error(`unknown balancer ${config.balance}`);
    this.balancer = factory({
      hashKey: config.balance === 'hash' ? compileHashKey(config.hash ?? { key: 'client_ip', load_factor: 0 }) : null,
      loadFactor: config.hash?.load_factor ?? 0,
    });
    this.sticky = config.sticky === undefined ? null : new StickyCookies(config.sticky, name, this.servers, registry.secret);
    this.headersTimeout = config.timeouts.header;
    this.bodyTimeout = config.timeouts.idle;
    this.backendAuthorities = new Set(this.servers.map((s) => s.authority.toLowerCase()));
    this.backendHostnames = new Set(this.servers.map((s) => s.hostname.toLowerCase()));
    this.#stateKey = `upstream:${name}`;
    this.state = registry.acquireShared(this.#stateKey, () => new UpstreamState(name));
    this.state.attach(this.breaker);
    for (const server of this.servers) server.join(this);
    this.#ready = true;
    this.serverChanged();
  }

  /** The servers taking traffic now. */
  get available(): readonly Server[] {
    return this.#available;
  }

  /**
   * The server for a request's next try: its sticky server when it has one that can take it,
   * else the balancer's pick, skipping servers that are full or already tried. Undefined when no
   * server can take it.
   */
  choose(ex: Exchange, attempt: Attempt | null): Server | undefined {
    if (this.sticky !== null) {
      const pinned = this.sticky.find(ex);
      if (pinned !== undefined && pinned.state.available && pinned.backup === this.#onBackups && this.#usable(pinned, attempt)) {
        if (attempt !== null) attempt.pinned = true;
        return pinned;
      }
    }
    const server = this.balancer.pick(ex, 0);
    if (server !== undefined && this.#usable(server, attempt)) return server;
    return this.#chooseSlowly(ex, attempt);
  }

  /**
   * The server `choose` would give a first try now, changing nothing (the balancer's peek): for
   * the admin API's explain. Past the peek, the first server that is not full, as `choose` does.
   */
  peek(ex: Exchange): { server: Server | undefined; sticky: boolean } {
    if (this.sticky !== null) {
      const pinned = this.sticky.find(ex);
      if (pinned !== undefined && pinned.state.available && pinned.backup === this.#onBackups && !pinned.full) return { server: pinned, sticky: true };
    }
    const server = this.balancer.peek(ex);
    if (server !== undefined && !server.full) return { server, sticky: false };
    return { server: this.#available.find((candidate) => !candidate.full), sticky: false };
  }

  /** The first pick was full or tried (a retry, or a loaded upstream): ask again, then look at each server. */
  #chooseSlowly(ex: Exchange, attempt: Attempt | null): Server | undefined {
    const available = this.#available;
    for (let skip = 1; skip <= available.length; skip++) {
      const server = this.balancer.pick(ex, skip);
      if (server !== undefined && this.#usable(server, attempt)) return server;
    }
    for (const server of available) if (this.#usable(server, attempt)) return server;
    return undefined;
  }

  #usable(server: Server, attempt: Attempt | null): boolean {
    return !server.full && (attempt === null || !attempt.tried(server));
  }

  /**
   * Seconds a client should wait before trying again when no server is available: until the
   * first ejection ends, or until a down server could pass `rise` checks. At least 1.
   */
  retryAfterSeconds(): number {
    const now = performance.now();
    let soonest = Infinity;
    const health = this.policy.health;
    for (const server of this.servers) {
      const state = server.state;
      if (state.draining) continue;
      if (!state.healthy && health !== null) soonest = Math.min(soonest, health.intervalMs * health.rise);
      else if (state.ejectedUntil !== 0) soonest = Math.min(soonest, state.ejectedUntil - now);
    }
    return soonest === Infinity ? 1 : Math.max(1, Math.min(3600, Math.ceil(soonest / 1000)));
  }

  /** Rebuilds the set of servers taking traffic and hands it to the balancer (on health changes, not per request). */
  serverChanged(): void {
    if (!this.#ready) return;
    let available = this.#primaries.filter((s) => s.state.available);
    this.#onBackups = available.length === 0;
    if (this.#onBackups) available = this.#backups.filter((s) => s.state.available);
    const now = performance.now();
    // Slow start scales the weight of a server that came back.
    const weights = available.map((s) => s.weight * s.state.share(now));
    this.#available = available;
    this.balancer.update(available, weights);
  }

  mayEject(): boolean {
    const outlier = this.policy.outlier;
    if (outlier === null) return false;
    let ejected = 0;
    for (const server of this.servers) if (server.state.ejectedUntil !== 0) ejected++;
    return ejected < ejectionCap(this.servers.length, outlier.maxEjectionPercent);
  }

  /** Gives the pools and shared state back to the registry; called when the snapshot that owns this is retired. */
  release(registry: Registry): void {
    this.#ready = false;
    for (const server of this.servers) {
      server.leave();
      registry.releasePool(server.poolKey);
      registry.releaseShared(serverStateKey(this.name, server.origin));
    }
    this.state.detach(this.breaker);
    registry.releaseShared(this.#stateKey);
  }
}

/**
 * The TLS settings of an upstream with https:// servers (null without any): its `tls` block's files
 * read again (the loader checked them; one may have gone since), and a warning when verification is off.
 */
function backendTls(name: string, config: UpstreamConfig, registry: Registry): BackendTls | null {
  if (!config.servers.some((s) => isHttpsUrl(s.url))) return null;
  let tls: BackendTls;
  try {
    tls = readBackendTls(config.tls);
  } catch (error: unknown) {
    if (!(error instanceof BackendTlsFileError)) throw error;
    throw new Error(`upstreams.${name}.tls.${error.field}: ${error.message}`, { cause: error });
  }
  if (!tls.verify) {
    registry.logger?.warn(
      { upstream: name },
      `upstreams.${name}.tls.verify is false: the servers' certificates are not checked, so anyone on the path can read and change this traffic`,
    );
  }
  return tls;
}

function serverStateKey(upstream: string, origin: string): string {
  return `server:${upstream}|${origin}`;
}
