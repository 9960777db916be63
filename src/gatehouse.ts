/** The composition root: start(), reload() and stop() of one Gatehouse process. */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { startAdminListener, type AdminListener } from './admin/admin.ts';
import type { ProtectionAdmin } from './admin/protection.ts';
import type { CacheSet } from './cache/compile.ts';
import { compileSnapshot, retireSnapshot } from './config/compile.ts';
import { diffConfigs } from './config/diff.ts';
import { loadConfigFile, sourceOf } from './config/load.ts';
import { formatAddress } from './config/units.ts';
import type { Config } from './config/schema.ts';
import { createAccessLog, SwitchableAccessLog, type AccessLog } from './core/access-log.ts';
import { createLogger } from './core/logger.ts';
import { Registry } from './core/registry.ts';
import { SnapshotHolder, type Snapshot } from './core/snapshot.ts';
import type { SharedProtection } from './core/protection-state.ts';
import type { HealthSharing } from './upstream/health/sharing.ts';
import { ListenError, listenError } from './listeners/bind-error.ts';
import type { ListenerContext } from './listeners/dispatch.ts';
import { NO_HTTPS_POLICY } from './listeners/https-policy.ts';
import type { Http2Counters } from './listeners/http2.ts';
import { Listener } from './listeners/listener.ts';
import { CertificateSources } from './listeners/tls/certificate-sources.ts';
import { CertificateStore, type CertificateLog } from './listeners/tls/certificate-store.ts';
import type { ListenerCertificates } from './listeners/tls/listener-certificates.ts';
import { handshakeSettingsOf, type HandshakeSettings } from './listeners/tls/handshake.ts';
import { DerivedTicketKeys, randomTicketSecret } from './listeners/tls/session-tickets.ts';
import { findServer, serverStatus, upstreamStatus } from './upstream/status.ts';

export interface GatehouseOptions {
  /** The file the configuration came from; reload() reads it again. */
  readonly configFile?: string;
  readonly logger?: Logger;
  /** One of several worker threads: listeners bind with SO_REUSEPORT, and the state below is shared. */
  readonly worker?: WorkerSharing;
}

/** What a worker thread's Gatehouse shares with the others (workers/shared.ts). */
export interface WorkerSharing {
  readonly protection: SharedProtection;
  readonly health: HealthSharing;
  /** The secret session ticket keys derive from: a client resumes on any worker. */
  readonly ticketSecret: Buffer;
}

/** A reload made ready beside the running configuration: nothing of it is visible until commit. */
export interface PreparedReload {
  readonly config: Config;
  readonly snapshot: Snapshot;
  readonly accessLog: AccessLog | undefined;
  readonly listeners: BoundListeners;
}

export class Gatehouse {
  readonly #registry = new Registry();
  readonly #holder: SnapshotHolder;
  readonly #listeners = new Map<string, Listener>();
  /** The certificates of each TLS listener (swapped by a reload, watched for file changes). */
  readonly #certificates = new Map<Listener, CertificateStore>();
  readonly #certificateLog: CertificateLog = (level, fields, message) => this.#logger[level](fields, message);
  /** Where TLS listeners' certificates come from (files, local CA, ACME), and the ACME challenges. */
  readonly #sources = new CertificateSources(this.#certificateLog);
  readonly #logger: Logger;
  readonly #configFile: string | undefined;
  readonly #accessLog: SwitchableAccessLog;
  #admin: AdminListener | undefined;
  #adminAddress: AddressInfo | undefined;
  #stopping: Promise<void> | undefined;
  #reloads: Promise<void> = Promise.resolve();
  readonly #startedAt = Date.now();

  readonly #reusePort: boolean;
  /** Session ticket keys of every TLS listener derive from it (with the listener's address). */
  readonly #ticketSecret: Buffer;

  private constructor(config: Config, options: GatehouseOptions) {
    this.#configFile = options.configFile;
    this.#reusePort = options.worker !== undefined;
    this.#registry.sharedProtection = options.worker?.protection ?? null;
    this.#registry.healthSharing = options.worker?.health ?? null;
    this.#ticketSecret = options.worker?.ticketSecret ?? randomTicketSecret();
    this.#logger = options.logger ?? createLogger(config.log.level);
    // Server state changes (down, ejected, drained) are logged by the state the registry keeps.
    this.#registry.logger = this.#logger;
    // The log first: a file that cannot be opened stops the start before anything else exists.
    this.#accessLog = new SwitchableAccessLog(this.#openAccessLog(config));
    try {
      this.#holder = new SnapshotHolder(compileSnapshot(config, this.#registry));
    } catch (error: unknown) {
      this.#accessLog.close();
      throw error;
    }
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
    const gatehouse = new Gatehouse(config, options);
    try {
      gatehouse.#applyListeners(config, await gatehouse.#bindListeners(config));
      if (config.admin !== undefined) ({ admin: gatehouse.#admin, address: gatehouse.#adminAddress } = await startAdminListener(config, gatehouse));
    } catch (error: unknown) {
      // Quietly: the caller reports the failure, and nothing was served.
      gatehouse.#stopping ??= gatehouse.#stop(0, false);
      await gatehouse.#stopping;
      throw error;
    }
    // A worker thread's start is one part of the proxy's: the primary says when all of it started.
    gatehouse.#logger.info({ listeners: gatehouse.addresses.map(formatAddress) }, gatehouse.#reusePort ? 'worker serving' : 'gatehouse started');
    return gatehouse;
  }

  get config(): Config {
    return this.#holder.current.config;
  }

  /** The bound addresses, in configuration order (useful with port 0). */
  get addresses(): AddressInfo[] {
    return [...this.#listeners.values()].map((l) => l.server.address() as AddressInfo);
  }

  get adminAddress(): AddressInfo | undefined {
    return this.#adminAddress;
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

  async #reload(next?: Config): Promise<void> {
    const prepared = await this.prepareReload(next ?? (await this.#readConfigFile()));
    this.commitReload(prepared);
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
    try {
      if (reopenLog) accessLog = this.#openAccessLog(config);
      const listeners = await this.#bindListeners(config);
      return { config, snapshot, accessLog, listeners };
    } catch (error: unknown) {
      accessLog?.close();
      retireSnapshot(snapshot, this.#registry);
      throw error;
    }
  }

  /** The second half: the prepared configuration becomes the running one, in one step. */
  commitReload(prepared: PreparedReload): void {
    const previous = this.#holder.current.config;
    this.#applyListeners(prepared.config, prepared.listeners);
    if (prepared.accessLog !== undefined) this.#accessLog.replace(prepared.accessLog);
    retireSnapshot(this.#holder.swap(prepared.snapshot), this.#registry);
    // ACME managers the new configuration no longer names stop (their pending orders first).
    void this.#sources.sweep().catch((error: unknown) => this.#logger.error({ error: String(error) }, 'stopping unused ACME managers failed'));
    // What changed, by name: a reload that was meant to change something says whether it did.
    this.#logger.info({ listeners: this.addresses.map(formatAddress), ...diffConfigs(previous, prepared.config) }, 'configuration reloaded');
  }

  /** Undoes a prepared reload that will not be committed (another worker could not prepare it). */
  async abortReload(prepared: PreparedReload): Promise<void> {
    prepared.accessLog?.close();
    retireSnapshot(prepared.snapshot, this.#registry);
    // Their addresses are let go at once; requests they took meanwhile finish without holding
    // the abort (and every reload queued behind it) up.
    for (const [, listener] of prepared.listeners.added) void this.#retire(listener);
    await this.#discardSources(prepared.listeners.sources);
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes what is left.
   * Safe to call more than once.
   */
  stop(graceMs = this.config.shutdown_timeout): Promise<void> {
    this.#stopping ??= this.#stop(graceMs, true);
    return this.#stopping;
  }

  async #stop(graceMs: number, log: boolean): Promise<void> {
    const listeners = [...this.#listeners.values()];
    for (const listener of listeners) listener.context.draining = true;
    const closed = Promise.all(listeners.map((l) => l.stopAccepting()));
    // Keep-alive connections that fall idle while draining are closed as they do.
    const sweep = setInterval(() => listeners.forEach((l) => l.closeIdleConnections()), 100);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    const outcome = await Promise.race([closed.then(() => 'drained' as const), deadline]);
    clearInterval(sweep);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#logger.warn({ grace_ms: graceMs }, 'shutdown deadline reached, closing remaining connections');
      for (const listener of listeners) listener.closeAllConnections();
    }
    for (const store of this.#certificates.values()) store.close();
    this.#certificates.clear();
    await this.#sources.close();
    await this.#admin?.close();
    await this.#registry.close(outcome === 'timeout' ? 0 : 1000);
    // Closed, not only flushed: requests that end after this (a late close) write nothing.
    this.#accessLog.close();
    if (log) this.#logger.info({ outcome }, 'gatehouse stopped');
  }

  /** The current snapshot's caches, for the admin API (statistics, purges). */
  caches(): CacheSet {
    return this.#holder.current.caches;
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
      uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      config_file: this.#configFile ?? null,
      listeners: this.addresses.map(formatAddress),
      routes: snapshot.router.size,
      upstreams: Object.fromEntries([...snapshot.upstreams].map(([name, upstream]) => [name, upstreamStatus(upstream)])),
      protection: snapshot.protection.state.status(),
      http2: this.#http2Counters(),
    };
  }

  /** What the HTTP/2 defences did, summed over the listeners. */
  #http2Counters(): Http2Counters {
    const sum: Http2Counters = { sessions: 0, premature_reset_closes: 0, send_timeouts: 0, session_errors: 0 };
    for (const listener of this.#listeners.values()) {
      for (const key of Object.keys(sum) as (keyof Http2Counters)[]) sum[key] += listener.http2.counters[key];
    }
    return sum;
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

  async #readConfigFile(): Promise<Config> {
    if (this.#configFile === undefined) throw new Error('no configuration file to reload from');
    return loadConfigFile(this.#configFile);
  }

  /**
   * Binds the listeners `config.listen` adds and gives kept TLS listeners their new certificates;
   * #applyListeners then makes the set match. A listener that gains or loses TLS is bound anew:
   * a worker thread binds it beside the old one (SO_REUSEPORT) and the old one goes at commit, so
   * an abort keeps the old; one process alone must close the old one here to free the address,
   * so that change is not undone by an abort.
   */
  async #bindListeners(config: Config): Promise<BoundListeners> {
    // Certificates are read, checked and made first: a broken file rejects the whole change.
    const handshakes = config.listen.map((listen, index) => (listen.tls === undefined ? undefined : handshakeOf(listen.tls, index)));
    const sources = await this.#sources.prepare(config);
    const kept: [Listener, ListenerCertificates, HandshakeSettings | undefined][] = [];
    const added: [string, Listener][] = [];
    try {
      for (const [index, listen] of config.listen.entries()) {
        const key = listenerKey(listen.address, index);
        const existing = this.#listeners.get(key);
        const source = sources[index] ?? null;
        if (existing !== undefined && existing.tls === (source !== null)) {
          // Its new certificates are served from the commit on.
          if (source !== null) kept.push([existing, source, handshakes[index]]);
          continue;
        }
        if (existing !== undefined && !this.#reusePort) {
          this.#listeners.delete(key);
          // Not awaited: closing the listening socket frees the address at once, and its open
          // connections (a long request, a WebSocket) must not hold up the reload while they finish.
          void this.#retire(existing);
        }
        const tls = source === null ? null : new CertificateStore(source.certificates, this.#certificateLog, handshakes[index], new DerivedTicketKeys(this.#ticketSecret, listen.address));
        const context: ListenerContext = {
          holder: this.#holder,
          accessLog: this.#accessLog,
          proto: tls === null ? 'http' : 'https',
          draining: false,
          https: NO_HTTPS_POLICY,
          // HTTP-01 challenges are answered on plain listeners only (RFC 8555 §8.3).
          challenges: tls === null ? this.#sources.challenges : null,
        };
        const listener = new Listener(listen.address, config.limits, context, listen, tls);
        if (tls !== null && source !== null) {
          this.#certificates.set(listener, tls);
          this.#sources.use(listener, tls, source);
        }
        try {
          await listener.listen(this.#reusePort);
        } catch (error: unknown) {
          // Its certificate store and source were taken above: they stop with it.
          await this.#retire(listener);
          throw listenError(error, listen.address, `listen[${index}]`, sourceOf(config, ['listen', index, 'address']));
        }
        added.push([key, listener]);
      }
    } catch (error: unknown) {
      await Promise.all(added.map(([, l]) => this.#retire(l)));
      await this.#discardSources(sources);
      if (error instanceof ListenError) throw error;
      throw new Error(`cannot listen: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return { added, kept, sources };
  }

  /** Sources no listener took are stopped (those in use stay with their listener), and ACME managers nobody uses. */
  async #discardSources(sources: readonly (ListenerCertificates | null)[]): Promise<void> {
    this.#sources.discard(sources);
    await this.#sources.sweep();
  }

  /** Adds the bound listeners, applies new limits to kept ones, retires those no longer configured. */
  #applyListeners(config: Config, bound: BoundListeners): void {
    for (const [key, listener] of bound.added) {
      // A worker's listener that gained or lost TLS replaces the old one only now.
      const replaced = this.#listeners.get(key);
      if (replaced !== undefined && replaced !== listener) void this.#retire(replaced);
      this.#listeners.set(key, listener);
    }
    for (const [listener, source, handshake] of bound.kept) {
      const store = this.#certificates.get(listener);
      if (store === undefined) continue;
      store.replace(source.certificates, handshake);
      this.#sources.use(listener, store, source);
    }
    const wanted = new Map(config.listen.map((l, i) => [listenerKey(l.address, i), l]));
    for (const [key, listener] of this.#listeners) {
      const listen = wanted.get(key);
      if (listen !== undefined) listener.applyLimits(config.limits, listen);
      else {
        this.#listeners.delete(key);
        void this.#retire(listener);
      }
    }
  }

  /** A listener that is no longer configured: it stops accepting, its requests finish. */
  #retire(listener: Listener): Promise<void> {
    listener.context.draining = true;
    this.#certificates.get(listener)?.close();
    this.#certificates.delete(listener);
    this.#sources.release(listener);
    return listener.stopAccepting();
  }

}

/**
 * Listeners are kept across reloads by address; those on port 0 (a free port each) by their
 * place in the list too, since several may share the text "127.0.0.1:0".
 */
function listenerKey(address: string, index: number): string {
  return address.endsWith(':0') ? `${address}#${index}` : address;
}


/** Listeners a reload bound, by key, not yet in service; kept TLS listeners and their new certificates. */
interface BoundListeners {
  readonly added: readonly (readonly [string, Listener])[];
  readonly kept: readonly (readonly [Listener, ListenerCertificates, HandshakeSettings | undefined])[];
  /** Every listener's certificate sources, for a discard on abort. */
  readonly sources: readonly (ListenerCertificates | null)[];
}

/** A TLS listener's handshake settings (the client CA read and checked); the error names the listener and the file. */
function handshakeOf(tls: Parameters<typeof handshakeSettingsOf>[0], index: number): HandshakeSettings {
  try {
    return handshakeSettingsOf(tls);
  } catch (error: unknown) {
    throw new Error(`listen[${index}].tls.client_auth: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
