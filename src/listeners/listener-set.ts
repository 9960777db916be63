/**
 * The listeners of one Gatehouse and what each TLS listener serves: binds the addresses a
 * configuration adds (prepare), makes the set match it (commit) or lets what was bound go
 * (abort), and keeps each TLS listener's certificate store and certificate source (files, local
 * CA, ACME) with it. The composition root (gatehouse.ts) decides when; this module does it.
 */
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import { sourceOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { formatAddress } from '../config/units.ts';
import type { AccessLog } from '../core/access-log.ts';
import type { SnapshotHolder } from '../core/snapshot.ts';
import type { TrafficRecorder } from '../core/recent-traffic.ts';
import { ListenError, listenError } from './bind-error.ts';
import type { ListenerContext } from './dispatch.ts';
import type { Http2Counters } from './http2.ts';
import { NO_HTTPS_POLICY } from './https-policy.ts';
import { Listener } from './listener.ts';
import { CertificateSources } from './tls/certificate-sources.ts';
import { CertificateStore, type CertificateLog } from './tls/certificate-store.ts';
import { handshakeSettingsOf, type HandshakeSettings } from './tls/handshake.ts';
import type { ListenerCertificates } from './tls/listener-certificates.ts';
import { DerivedTicketKeys } from './tls/session-tickets.ts';
import type { AcmeSharing } from './tls/acme/sharing.ts';
import { errorMessage } from '../core/caught.ts';

export interface ListenerSetOptions {
  readonly holder: SnapshotHolder;
  /** The same for every listener. */
  readonly accessLog: AccessLog;
  /** Per-second aggregates for the live dashboard; the same for every listener. */
  readonly traffic: TrafficRecorder;
  readonly logger: Logger;
  /** Session ticket keys of every TLS listener derive from it (with the listener's address). */
  readonly ticketSecret: Buffer;
  /** A worker thread's listeners bind with SO_REUSEPORT, beside the other workers'. */
  readonly reusePort: boolean;
  /** A worker thread: which one orders ACME certificates, and the channel to the others. */
  readonly acmeSharing?: AcmeSharing;
  /** Listening sockets handed over by the process this one replaces (an upgrade), taken at the first bind. */
  readonly inherited?: InheritedSockets;
}

/** Listening sockets handed over by the process being replaced (see upgrade/inherit.ts), by listener key. */
export interface InheritedSockets {
  /** The pid of the process being replaced. */
  readonly predecessor: number;
  /** The listening socket the old process serves under `key`, or undefined when it has none. */
  take(key: string): Promise<NetServer | undefined>;
}

export class ListenerSet {
  readonly #listeners = new Map<string, Listener>();
  /** The certificates of each TLS listener (swapped by a reload, watched for file changes). */
  readonly #certificates = new Map<Listener, CertificateStore>();
  readonly #certificateLog: CertificateLog;
  /** Where TLS listeners' certificates come from (files, local CA, ACME), and the ACME challenges. */
  readonly #sources: CertificateSources;
  readonly #holder: SnapshotHolder;
  readonly #accessLog: AccessLog;
  readonly #traffic: TrafficRecorder;
  readonly #ticketSecret: Buffer;
  readonly #reusePort: boolean;
  /** Cleared after the first bind: a reload binds its new addresses itself. */
  #inherited: InheritedSockets | undefined;

  constructor(options: ListenerSetOptions) {
    const logger = options.logger;
    this.#certificateLog = (level, fields, message) => logger[level](fields, message);
    this.#sources = new CertificateSources(this.#certificateLog, options.acmeSharing);
    this.#holder = options.holder;
    this.#accessLog = options.accessLog;
    this.#traffic = options.traffic;
    this.#ticketSecret = options.ticketSecret;
    this.#reusePort = options.reusePort;
    this.#inherited = options.inherited;
  }

  /** The listening sockets by listener key, to hand over to the process that replaces this one. */
  sockets(): Map<string, NetServer> {
    return new Map([...this.#listeners].map(([key, listener]) => [key, listener.server]));
  }

  /** The listeners in service, in configuration order. */
  get all(): Listener[] {
    return [...this.#listeners.values()];
  }

  /** The bound addresses, in configuration order (useful with port 0). */
  get addresses(): AddressInfo[] {
    return this.all.map((l) => l.server.address() as AddressInfo);
  }

  /** Each TLS listener's certificates now: the first name and expiry of each (for /metrics). */
  certificateExpiry(): { listener: Listener; name: string; notAfter: Date }[] {
    const out = [];
    for (const [listener, store] of this.#certificates) {
      for (const cert of store.certificates) out.push({ listener, name: cert.names[0] ?? '', notAfter: cert.notAfter });
    }
    return out;
  }

  /** The certificates each TLS listener serves now, with their expiry (GET /status, the dashboard). */
  certificates(): { listener: string; names: readonly string[]; not_after: string }[] {
    return [...this.#certificates].flatMap(([listener, store]) =>
      store.certificates.map((c) => ({ listener: formatAddress(listener.server.address() as AddressInfo), names: c.names, not_after: c.notAfter.toISOString() })),
    );
  }

  /** What the HTTP/2 defences did, summed over the listeners. */
  http2Counters(): Http2Counters {
    const sum: Http2Counters = { sessions: 0, premature_reset_closes: 0, send_timeouts: 0, session_errors: 0 };
    for (const listener of this.#listeners.values()) {
      for (const key of Object.keys(sum) as (keyof Http2Counters)[]) sum[key] += listener.http2.counters[key];
    }
    return sum;
  }

  /** After a commit: ACME managers the new configuration no longer names stop (their pending orders first). */
  sweep(): Promise<void> {
    return this.#sources.sweep();
  }

  /** Undoes bind(): the listeners it bound let their addresses go at once (their requests finish meanwhile). */
  async abort(bound: BoundListeners): Promise<void> {
    for (const [, listener] of bound.added) void this.#retire(listener);
    await this.#discardSources(bound.sources);
  }

  /** At stop, once the listeners drained: certificate stores and sources stop (file watchers, OCSP, ACME). */
  async close(): Promise<void> {
    for (const store of this.#certificates.values()) store.close();
    this.#certificates.clear();
    await this.#sources.close();
  }

  /**
   * Binds the listeners `config.listen` adds and gives kept TLS listeners their new certificates;
   * apply() then makes the set match. A listener that gains or loses TLS is bound anew:
   * a worker thread binds it beside the old one (SO_REUSEPORT) and the old one goes at commit, so
   * an abort keeps the old; one process alone must close the old one here to free the address,
   * so it does that last, once every other new address is bound (a failure before leaves it as
   * it was); that change is not undone by an abort.
   */
  async bind(config: Config): Promise<BoundListeners> {
    // Certificates are read, checked and made first: a broken file rejects the whole change.
    const handshakes = config.listen.map((listen, index) => (listen.tls === undefined ? undefined : handshakeOf(listen.tls, index)));
    const sources = await this.#sources.prepare(config);
    const kept: [Listener, ListenerCertificates, HandshakeSettings | undefined][] = [];
    const added: [string, Listener][] = [];
    /** Listeners that gain or lose TLS in one process: bound last, since the old one must close first. */
    const toggled: number[] = [];
    const inherited = this.#inherited;
    this.#inherited = undefined;
    try {
      for (const [index, listen] of config.listen.entries()) {
        const existing = this.#listeners.get(listenerKey(listen.address, index));
        const source = sources[index] ?? null;
        if (existing !== undefined && existing.tls === (source !== null)) {
          // Its new certificates are served from the commit on.
          if (source !== null) kept.push([existing, source, handshakes[index]]);
        } else if (existing !== undefined && !this.#reusePort) toggled.push(index);
        else added.push(await this.#bindOne(config, index, source, handshakes[index], inherited));
      }
      // Every new address bound: what can fail has failed before an old listener is closed.
      for (const index of toggled) {
        const listen = config.listen[index] as Config['listen'][number];
        const key = listenerKey(listen.address, index);
        const existing = this.#listeners.get(key) as Listener;
        this.#listeners.delete(key);
        // Not awaited: closing the listening socket frees the address at once, and its open
        // connections (a long request, a WebSocket) must not hold up the reload while they finish.
        void this.#retire(existing);
        added.push(await this.#bindOne(config, index, sources[index] ?? null, handshakes[index], inherited));
      }
    } catch (error: unknown) {
      // As abort(): the addresses go at once; requests they took meanwhile finish without holding the answer up.
      for (const [, listener] of added) void this.#retire(listener);
      await this.#discardSources(sources);
      if (error instanceof ListenError) throw error;
      throw new Error(`cannot listen: ${errorMessage(error)}`, { cause: error });
    }
    return { added, kept, sources };
  }

  /** Binds `config.listen[index]` anew (or takes over the socket a process being replaced serves it on), with its certificates when it has TLS. */
  async #bindOne(config: Config, index: number, source: ListenerCertificates | null, handshake: HandshakeSettings | undefined, inherited: InheritedSockets | undefined): Promise<[string, Listener]> {
    const listen = config.listen[index] as Config['listen'][number];
    const tls = source === null ? null : new CertificateStore(source.certificates, this.#certificateLog, handshake, new DerivedTicketKeys(this.#ticketSecret, listen.address));
    const context: ListenerContext = {
      holder: this.#holder,
      accessLog: this.#accessLog,
      traffic: this.#traffic,
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
    const key = listenerKey(listen.address, index);
    try {
      await listener.listen(this.#reusePort, await inherited?.take(key));
    } catch (error: unknown) {
      // Its certificate store and source were taken above: they stop with it.
      await this.#retire(listener);
      throw listenError(error, listen.address, `listen[${index}]`, sourceOf(config, ['listen', index, 'address']));
    }
    return [key, listener];
  }

  /** Sources no listener took are stopped (those in use stay with their listener), and ACME managers nobody uses. */
  async #discardSources(sources: readonly (ListenerCertificates | null)[]): Promise<void> {
    this.#sources.discard(sources);
    await this.#sources.sweep();
  }

  /** Adds the bound listeners, applies new limits to kept ones, retires those no longer configured. */
  apply(config: Config, bound: BoundListeners): void {
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
export interface BoundListeners {
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
    throw new Error(`listen[${index}].tls.client_auth: ${errorMessage(error)}`, { cause: error });
  }
}
