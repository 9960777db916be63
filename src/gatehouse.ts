/** The composition root: start(), reload() and stop() of one Gatehouse process. */
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import { startAdminListener, type AdminListener } from './admin/admin.ts';
import type { ProtectionAdmin } from './admin/protection.ts';
import { explainRequest, type Explanation, type ExplainQuery } from './admin/explain.ts';
import { MetricsEndpoint, type MetricsAnswer, type MetricsJson } from './admin/metrics/endpoint.ts';
import { ReloadCounts, reloadFamilies, requestFamilies } from './admin/metrics/families.ts';
import type { CacheSet } from './cache/compile.ts';
import { compileSnapshot, retireSnapshot } from './config/compile.ts';
import { diffConfigs } from './config/diff.ts';
import { loadConfigFile } from './config/load.ts';
import { formatAddress } from './config/units.ts';
import type { Config } from './config/schema.ts';
import { createAccessLog, SwitchableAccessLog, type AccessLog } from './core/access-log.ts';
import { createLogger } from './core/logger.ts';
import { Registry } from './core/registry.ts';
import { SnapshotHolder, type Snapshot } from './core/snapshot.ts';
import { TrafficRecorder, type TrafficWindow } from './core/recent-traffic.ts';
import type { SharedProtection } from './core/protection-state.ts';
import { loadRedisClient, RedisState } from './core/redis-state.ts';
import type { HealthSharing } from './upstream/health/sharing.ts';
import { redisHealthSharing } from './upstream/health/redis-sharing.ts';
import { ListenerSet, type BoundListeners, type InheritedSockets } from './listeners/listener-set.ts';
import { randomTicketSecret } from './listeners/tls/session-tickets.ts';
import type { AcmeSharing } from './listeners/tls/acme/sharing.ts';
import { findServer, serverStatus, upstreamStatus } from './upstream/status.ts';
import { gslbStatus } from './gslb/status.ts';
import { DnsListeners, type PreparedDns } from './gslb/dns-listeners.ts';

/** How long a stop waits for the last spans to reach the OTLP collector. */
const SPAN_FLUSH_MS = 2000;

export interface GatehouseOptions {
  /** The file the configuration came from; reload() reads it again. */
  readonly configFile?: string;
  readonly logger?: Logger;
  /** One of several worker threads: listeners bind with SO_REUSEPORT, and the state below is shared. */
  readonly worker?: WorkerSharing;
  /** The listening sockets of the process this one replaces (an upgrade, see upgrade/): served instead of binding anew. */
  readonly inherited?: InheritedSockets;
}

/** The key the admin listener's socket is handed over under (listeners go by their listener key). */
function adminSocketKey(address: string): string {
  return `admin ${address}`;
}

/** What a worker thread's Gatehouse shares with the others (workers/shared.ts). */
export interface WorkerSharing {
  readonly protection: SharedProtection;
  readonly health: HealthSharing;
  /** The secret session ticket keys derive from: a client resumes on any worker. */
  readonly ticketSecret: Buffer;
  /** One worker orders ACME certificates; challenges and new certificates reach the others. */
  readonly acme: AcmeSharing;
  /** This worker answers the gslb DNS listeners (one worker does: UDP sockets are not shared). */
  readonly answersDns?: boolean;
  /** The name the process's threads share on Redis (they tell each other through their own channel). */
  readonly redisInstance?: string;
}

/** A reload made ready beside the running configuration: nothing of it is visible until commit. */
export interface PreparedReload {
  readonly config: Config;
  readonly snapshot: Snapshot;
  readonly accessLog: AccessLog | undefined;
  readonly listeners: BoundListeners;
  readonly dns: PreparedDns;
}

export class Gatehouse {
  readonly #registry = new Registry();
  readonly #holder: SnapshotHolder;
  readonly #listeners: ListenerSet;
  readonly #dns: DnsListeners;
  readonly #logger: Logger;
  readonly #configFile: string | undefined;
  readonly #accessLog: SwitchableAccessLog;
  /** Per-second aggregates for the live dashboard (admin/live.ts). */
  readonly #traffic = new TrafficRecorder();
  #admin: AdminListener | undefined;
  #adminAddress: AddressInfo | undefined;
  #stopping: Promise<void> | undefined;
  #reloads: Promise<void> = Promise.resolve();
  readonly #startedAt = Date.now();
  /** One of several worker threads (see GatehouseOptions.worker). */
  readonly #inWorker: boolean;
  readonly #reloadCounts = new ReloadCounts();
  /** GET /metrics (a worker's are asked for by the primary, which counts reloads and the process). */
  readonly #metrics: MetricsEndpoint;

  private constructor(config: Config, options: GatehouseOptions) {
    this.#configFile = options.configFile;
    this.#inWorker = options.worker !== undefined;
    this.#registry.sharedProtection = options.worker?.protection ?? null;
    this.#registry.healthSharing = options.worker?.health ?? null;
    // A disk cache the replaced process holds is waited for (it lets go at its hand-over).
    this.#registry.predecessor = options.inherited?.predecessor ?? null;
    this.#logger = options.logger ?? createLogger(config.log.level);
    // Server state changes (down, ejected, drained) are logged by the state the registry keeps.
    this.#registry.logger = this.#logger;
    // Read at start: shared stores are made once, and outlive reloads.
    const redis = config.state.redis;
    if (redis !== undefined) {
      const state = new RedisState(redis, this.#logger, options.worker?.redisInstance);
      this.#registry.redis = state;
      if (redis.share_health) this.#registry.healthSharing = redisHealthSharing(state, this.#registry.healthSharing);
    }
    // The log first: a file that cannot be opened stops the start before anything else exists.
    this.#accessLog = new SwitchableAccessLog(this.#openAccessLog(config));
    try {
      this.#holder = new SnapshotHolder(compileSnapshot(config, this.#registry));
    } catch (error: unknown) {
      this.#accessLog.close();
      this.#traffic.close();
      this.#registry.redis?.close();
      throw error;
    }
    this.#listeners = new ListenerSet({
      holder: this.#holder,
      accessLog: this.#accessLog,
      traffic: this.#traffic,
      logger: this.#logger,
      ticketSecret: options.worker?.ticketSecret ?? randomTicketSecret(),
      reusePort: this.#inWorker,
      ...(options.worker === undefined ? {} : { acmeSharing: options.worker.acme }),
      ...(options.inherited === undefined ? {} : { inherited: options.inherited }),
    });
    this.#dns = new DnsListeners(this.#logger, options.worker === undefined || options.worker.answersDns === true);
    const source = { snapshot: () => this.#holder.current, unrouted: this.#registry.unrouted, listeners: () => this.#listeners.all, certificates: () => this.#listeners.certificateExpiry() };
    this.#metrics = new MetricsEndpoint(
      () => [...requestFamilies(source), ...(this.#inWorker ? [] : reloadFamilies(this.#reloadCounts))],
      !this.#inWorker,
    );
  }

  #openAccessLog(config: Config): AccessLog {
    try {
      return createAccessLog(config.access_log, (error) => {
        this.#logger.error({ err: error }, 'access log write failed; lines are dropped until writes work again');
      });
    } catch (error: unknown) {
      throw new Error(`access_log: cannot open ${config.access_log.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Binds every listener of `config` and starts serving. */
  static async start(config: Config, options: GatehouseOptions = {}): Promise<Gatehouse> {
    if (config.state.redis !== undefined) await loadRedisClient();
    const gatehouse = new Gatehouse(config, options);
    const redis = gatehouse.#registry.redis;
    // Serving starts with state shared when Redis answers in time; otherwise degraded (local) until it does.
    if (redis !== null && !(await redis.whenAvailable(config.state.redis?.connect_timeout ?? 0))) {
      gatehouse.#logger.warn({}, 'redis not reachable at start: serving with local state until it is');
    }
    try {
      gatehouse.#listeners.apply(config, await gatehouse.#listeners.bind(config));
      gatehouse.#dns.apply(await gatehouse.#dns.bind(gatehouse.#holder.current));
      // A worker thread's admin listener is the primary's.
      if (config.admin !== undefined && !gatehouse.#inWorker) {
        const inherited = await options.inherited?.take(adminSocketKey(config.admin.address));
        ({ admin: gatehouse.#admin, address: gatehouse.#adminAddress } = await startAdminListener(config, gatehouse, gatehouse.#logger, inherited));
      }
    } catch (error: unknown) {
      // Quietly: the caller reports the failure, and nothing was served.
      gatehouse.#stopping ??= gatehouse.#stop(0, false);
      await gatehouse.#stopping;
      throw error;
    }
    // A worker thread's start is one part of the proxy's: the primary says when all of it started.
    gatehouse.#logger.info({ listeners: gatehouse.addresses.map(formatAddress) }, gatehouse.#inWorker ? 'worker serving' : 'gatehouse started');
    return gatehouse;
  }

  get config(): Config {
    return this.#holder.current.config;
  }

  /** The bound addresses, in configuration order (useful with port 0). */
  get addresses(): AddressInfo[] {
    return this.#listeners.addresses;
  }

  /** The bound gslb DNS listeners (UDP and TCP on each), by block name. */
  get dnsAddresses(): { block: string; address: string; port: number }[] {
    return this.#dns.addresses;
  }

  get adminAddress(): AddressInfo | undefined {
    return this.#adminAddress;
  }

  /** The file the configuration came from; undefined when built in code (`proxy`, tests). */
  get configFile(): string | undefined {
    return this.#configFile;
  }

  /**
   * Swaps in a new configuration (read again from the file when none is given). The new snapshot is
   * built beside the running one; a bad configuration throws and the old one stays. In-flight
   * requests finish on the old snapshot; unchanged server pools are kept. A file access log is
   * opened again (after logrotate renamed it). Reloads run one after another.
   */
  reload(next?: Config): Promise<void> {
    const run = this.#reloads.then(() => this.#reload(next));
    this.#reloads = run.catch(() => {});
    return run;
  }

  #reload(next?: Config): Promise<void> {
    return this.#reloadCounts.count(this.#prepareAndCommit(next));
  }

  async #prepareAndCommit(next?: Config): Promise<void> {
    const prepared = await this.prepareReload(next ?? (await this.#readConfigFile()));
    this.commitReload(prepared);
    // The admin API's configuration history sees every reload, not only those it applied.
    this.#admin?.committed(prepared.config);
  }

  /**
   * The first half of a reload: the new snapshot compiled, the access log opened, new listeners
   * bound, certificates read; throws (having undone its part) when any of it fails. Worker threads
   * all prepare before any commits, so that they all change or none does.
   */
  async prepareReload(config: Config): Promise<PreparedReload> {
    if (this.#stopping !== undefined) throw new Error('gatehouse is stopping');
    const snapshot = compileSnapshot(config, this.#registry);
    const previous = this.#holder.current.config;
    const log = config.access_log;
    const reopenLog = JSON.stringify(previous.access_log) !== JSON.stringify(log) || (log.enabled && log.path !== 'stdout');
    let accessLog: AccessLog | undefined;
    let listeners: BoundListeners | undefined;
    try {
      if (reopenLog) accessLog = this.#openAccessLog(config);
      listeners = await this.#listeners.bind(config);
      const dns = await this.#dns.bind(snapshot);
      return { config, snapshot, accessLog, listeners, dns };
    } catch (error: unknown) {
      if (listeners !== undefined) await this.#listeners.abort(listeners);
      accessLog?.close();
      retireSnapshot(snapshot, this.#registry);
      throw error;
    }
  }

  /** The second half: the prepared configuration becomes the running one, in one step. */
  commitReload(prepared: PreparedReload): void {
    const previous = this.#holder.current.config;
    if (JSON.stringify(previous.state) !== JSON.stringify(prepared.config.state)) {
      this.#logger.warn({}, 'state (redis) changes take effect at the next restart');
    }
    this.#listeners.apply(prepared.config, prepared.listeners);
    this.#dns.apply(prepared.dns);
    if (prepared.accessLog !== undefined) this.#accessLog.replace(prepared.accessLog);
    retireSnapshot(this.#holder.swap(prepared.snapshot), this.#registry);
    // ACME managers the new configuration no longer names stop (their pending orders first).
    void this.#listeners.sweep().catch((error: unknown) => this.#logger.error({ error: String(error) }, 'stopping unused ACME managers failed'));
    // What changed, by name: a reload that was meant to change something says whether it did.
    this.#logger.info({ listeners: this.addresses.map(formatAddress), ...diffConfigs(previous, prepared.config) }, 'configuration reloaded');
  }

  /** Undoes a prepared reload that will not be committed (another worker could not prepare it). */
  async abortReload(prepared: PreparedReload): Promise<void> {
    prepared.accessLog?.close();
    retireSnapshot(prepared.snapshot, this.#registry);
    // Requests the new listeners took meanwhile finish without holding the abort (and every
    // reload queued behind it) up.
    await this.#listeners.abort(prepared.listeners);
    await this.#dns.abort(prepared.dns);
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes what is left.
   * Safe to call more than once.
   */
  stop(graceMs = this.config.shutdown_timeout): Promise<void> {
    this.#stopping ??= this.#stop(graceMs, true);
    return this.#stopping;
  }

  /**
   * The listening sockets (listeners by listener key, the admin listener by adminSocketKey), for
   * the process that replaces this one (upgrade/).
   */
  sockets(): Map<string, NetServer> {
    const sockets = this.#listeners.sockets();
    const admin = this.config.admin;
    if (this.#admin !== undefined && admin !== undefined) sockets.set(adminSocketKey(admin.address), this.#admin.server);
    return sockets;
  }

  /**
   * Stops as stop() does, once another process serves the same listening sockets (an upgrade):
   * connections are not closed for being idle (one may carry a request on its way, see
   * Listener.handOver); each is answered with Connection: close or ends by its keep-alive timeout.
   * What is left at shutdown_timeout (WebSockets, long requests) is closed then.
   */
  handOver(): Promise<void> {
    this.#stopping ??= this.#stop(this.config.shutdown_timeout, true, true);
    return this.#stopping;
  }

  async #stop(graceMs: number, log: boolean, handOver = false): Promise<void> {
    const listeners = this.#listeners.all;
    for (const listener of listeners) listener.context.draining = true;
    const closed = Promise.all(listeners.map((l) => (handOver ? l.handOver() : l.stopAccepting())));
    if (handOver) {
      // The admin API is the new process's from now on (its /status is the one to believe).
      this.#admin?.stopAccepting();
      // Disk caches stop writing: their directories are the new process's now.
      this.#registry.handOver();
    }
    // Keep-alive connections that fall idle while draining are closed as they do (not when
    // handing over: the other process takes their clients' next connections, see handOver()).
    const sweep = handOver ? undefined : setInterval(() => listeners.forEach((l) => l.closeIdleConnections()), 100);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline]);
    if (sweep !== undefined) clearInterval(sweep);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#logger.warn({ grace_ms: graceMs }, 'shutdown deadline reached, closing remaining connections');
      for (const listener of listeners) listener.closeAllConnections();
    }
    await this.#listeners.close();
    await this.#dns.close();
    await this.#admin?.close();
    await this.#flushSpansWithin(SPAN_FLUSH_MS);
    await this.#registry.close(outcome === 'timeout' ? 0 : 1000);
    // After the stores: they give their unspent reservations back on the way out.
    this.#registry.redis?.close();
    // Closed, not only flushed: requests that end after this (a late close) write nothing.
    this.#accessLog.close();
    this.#traffic.close();
    if (log) this.#logger.info({ outcome }, 'gatehouse stopped');
  }

  /** The current snapshot's caches, for the admin API (statistics, purges). */
  caches(): CacheSet {
    return this.#holder.current.caches;
  }

  /** The last minute's requests, errors and latencies, second by second, for the live dashboard. */
  traffic(): TrafficWindow {
    return this.#traffic.window();
  }

  /** What the running configuration would do with a request, for the admin API (changes nothing). */
  explain(query: ExplainQuery): Promise<Explanation> {
    return explainRequest(this.#holder.current, query);
  }

  /** GET /metrics; null when `admin.metrics` is off (or there is no admin listener). */
  async metrics(): Promise<MetricsAnswer | null> {
    return this.#holder.current.metrics === null ? null : this.#metrics.text();
  }

  /** Sends the spans batched for OTLP export now (at stop; tests). */
  async flushSpans(): Promise<void> {
    await this.#holder.current.tracing.spans?.flush();
  }

  /** A worker's metrics for the primary to merge; empty when metrics are off. */
  async metricsJson(): Promise<MetricsJson> {
    return this.#holder.current.metrics === null ? [] : this.#metrics.json();
  }

  /** The protection state (bans, counters) for the admin API. */
  protection(): ProtectionAdmin {
    const policy = this.#holder.current.protection;
    return { state: policy.state, v6Prefix: policy.v6Prefix };
  }

  /** Per-server state and counters for the admin API. */
  status(): unknown {
    const snapshot = this.#holder.current;
    return {
      pid: process.pid,
      uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      config_file: this.#configFile ?? null,
      listeners: this.addresses.map(formatAddress),
      routes: snapshot.router.size,
      upstreams: Object.fromEntries([...snapshot.upstreams].map(([name, upstream]) => [name, upstreamStatus(upstream)])),
      ...(snapshot.gslb.size > 0
        ? { gslb: Object.fromEntries([...snapshot.gslb].map(([name, block]) => [name, gslbStatus(block)])), dns_queries: this.#dns.counters() }
        : {}),
      protection: snapshot.protection.state.status(),
      redis: this.#registry.redis?.status() ?? null,
      http2: this.#listeners.http2Counters(),
      certificates: this.#listeners.certificates(),
    };
  }

  /**
   * Takes a server out of rotation (`on`) or puts it back, through the admin API: in-flight
   * requests finish; the setting survives reloads while the server stays configured. `server` is
   * its position in the upstream's list, its host:port or its URL. Throws when there is no such server.
   */
  drain(upstreamName: string, server: string, on: boolean): unknown {
    const upstream = this.#holder.current.upstreams.get(upstreamName);
    if (upstream === undefined) throw new Error(`no upstream named "${upstreamName}"`);
    const found = findServer(upstream, server);
    if (found === undefined) throw new Error(`upstream "${upstreamName}" has no server "${server}"`);
    found.state.setAdminDrain(on);
    return serverStatus(found);
  }

  /** The last spans go out, unless the collector takes longer than `ms`: a stop does not wait on it. */
  async #flushSpansWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([this.flushSpans().catch(() => {}), late]);
    clearTimeout(timer);
  }

  async #readConfigFile(): Promise<Config> {
    if (this.#configFile === undefined) throw new Error('no configuration file to reload from');
    return loadConfigFile(this.#configFile);
  }

}
