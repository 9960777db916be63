/**
 * A TLS listener's certificates, chosen by SNI: the exact name, then a wildcard one label up
 * (*.example.com serves a.example.com, not example.com nor a.b.example.com), then the default: the
 * first configured certificate, also for clients that send no SNI. A name may have an ECDSA and an
 * RSA certificate: the default context holds both and OpenSSL picks; for names chosen by SNI the
 * listener reads the ClientHello first (client-hello.ts) and the store hands over the context of
 * the key type the client can check, because Node installs only one certificate of an SNI context.
 * The files are watched: a changed pair serves new handshakes; a broken one is refused and the
 * old certificate keeps serving. Open connections are never touched. Certificates that name an
 * OCSP responder get their responses stapled (ocsp-stapler.ts).
 */
import { unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContext, type Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import type { ListenerTls } from '../listener.ts';
import { loadCertificate, type CertificateFiles, type LoadedCertificate } from './certificate.ts';
import { HELLO, type HelloFacts } from './client-hello.ts';
import { contextOptions, DEFAULT_HANDSHAKE, sameHandshake, type HandshakeSettings } from './handshake.ts';
import { OcspStapler } from './ocsp-stapler.ts';
import { DerivedTicketKeys, randomTicketSecret, SessionTickets, type TicketKeySource } from './session-tickets.ts';
import { errorMessage } from '../../core/caught.ts';

type HelloSocket = TLSSocket & { _parent?: { [HELLO]?: HelloFacts } };

/** One name's certificates, a context per key type. */
interface NameContexts {
  readonly ecdsa: SecureContext | undefined;
  /** RSA, or the only certificate when it is neither ECDSA nor RSA (Ed25519). */
  readonly other: SecureContext | undefined;
}

/** TLS 1.2 and 1.3 only; Node's default cipher list (AEAD suites with forward secrecy) stays. */
const MIN_VERSION = 'TLSv1.2';
/** How often certificate files are checked (stat polling survives renames and symlink swaps, as certbot does them). */
const WATCH_INTERVAL_MS = 1_000;
/** A certificate and its key are usually replaced one after the other: wait for both. */
const SETTLE_MS = 200;

/** Reports what happens to certificates (reloads, refusals). */
export type CertificateLog = (level: 'info' | 'error', fields: Record<string, unknown>, message: string) => void;

/** Loads every pair; throws on the first broken one (naming its file), before anything changes. */
export function loadCertificates(pairs: readonly CertificateFiles[]): LoadedCertificate[] {
  return pairs.map((pair) => loadCertificate(pair));
}

export class CertificateStore implements ListenerTls {
  readonly #log: CertificateLog;
  #exact = new Map<string, NameContexts>();
  #wildcard = new Map<string, NameContexts>();
  /** Some name has both an ECDSA and another certificate: connections' ClientHellos are read. */
  #needsClientHello = false;
  #default: readonly LoadedCertificate[] = [];
  #watched: string[] = [];
  #loaded: readonly LoadedCertificate[] = [];
  #server: TlsServer | null = null;
  #settle: NodeJS.Timeout | undefined;
  /** OCSP responses for the certificates that name a responder. */
  readonly #stapler: OcspStapler;
  /** Session tickets and client certificates. */
  #handshake: HandshakeSettings;
  /** Ticket keys: from this listener's own secret, or one every worker shares. */
  readonly #ticketKeys: TicketKeySource;
  #tickets: SessionTickets;
  readonly #onFileChange = (): void => {
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#reloadFromFiles(), SETTLE_MS);
    this.#settle.unref();
  };

  constructor(
    certificates: LoadedCertificate[],
    log: CertificateLog,
    handshake: HandshakeSettings = DEFAULT_HANDSHAKE,
    ticketKeys: TicketKeySource = new DerivedTicketKeys(randomTicketSecret()),
  ) {
    this.#log = log;
    this.#ticketKeys = ticketKeys;
    this.#stapler = new OcspStapler(log);
    this.#handshake = handshake;
    this.#tickets = new SessionTickets(this.#ticketKeys, handshake.ticketRotation);
    this.#use(certificates);
  }

  /** The server options: the default certificate, and SNI selection of the others. */
  get options(): TlsOptions {
    const store = this;
    const clientAuth = this.#handshake.clientAuth;
    return {
      ...this.#defaultContextOptions(),
      requestCert: clientAuth !== null,
      rejectUnauthorized: clientAuth?.required === true,
      // node:tls calls it with the TLS socket as `this`; the listener put the ClientHello facts on its TCP socket.
      SNICallback(this: HelloSocket, servername, callback) {
        const context = store.contextFor(servername, this._parent?.[HELLO]?.ecdsa ?? true);
        // node:tls asks for the OCSP staple within this callback, for the context given here.
        store.#stapler.singleCertificate = context !== undefined;
        try {
          callback(null, context);
        } finally {
          store.#stapler.singleCertificate = false;
        }
      },
    };
  }

  get needsClientHello(): boolean {
    return this.#needsClientHello;
  }

  attach(server: TlsServer): void {
    this.#server = server;
    this.#stapler.attach(server);
    if (this.#handshake.sessionTickets) this.#tickets.attach(server);
  }

  /** The context for an SNI name, ECDSA when the client takes it; undefined leaves the server's default. */
  contextFor(servername: string, ecdsa: boolean): SecureContext | undefined {
    const name = servername.toLowerCase();
    let contexts = this.#exact.get(name);
    if (contexts === undefined) {
      const dot = name.indexOf('.');
      contexts = dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
    }
    if (contexts === undefined) return undefined;
    return (ecdsa ? contexts.ecdsa : undefined) ?? contexts.other ?? contexts.ecdsa;
  }

  /** Certificates already loaded and checked (a reload), and maybe new handshake settings: new handshakes use them. */
  replace(certificates: LoadedCertificate[], handshake: HandshakeSettings = this.#handshake): void {
    const changed = !sameHandshake(handshake, this.#handshake);
    if (changed) {
      this.#tickets.close();
      this.#handshake = handshake;
      this.#tickets = new SessionTickets(this.#ticketKeys, handshake.ticketRotation);
    }
    this.#use(certificates);
    const server = this.#server;
    if (server === null) return;
    server.setSecureContext(this.#defaultContextOptions());
    if (changed) {
      // Read by node:tls for each new connection.
      const live = server as TlsServer & { requestCert: boolean; rejectUnauthorized: boolean };
      live.requestCert = handshake.clientAuth !== null;
      live.rejectUnauthorized = handshake.clientAuth?.required === true;
      if (handshake.sessionTickets) this.#tickets.attach(server);
    }
  }

  /** Stops watching the files. */
  close(): void {
    clearTimeout(this.#settle);
    this.#watch([]);
    this.#stapler.close();
    this.#tickets.close();
  }

  /** The certificates served now (for the expiry metric and GET /status). */
  get certificates(): readonly LoadedCertificate[] {
    return this.#loaded;
  }

  #use(certificates: LoadedCertificate[]): void {
    this.#loaded = certificates;
    this.#watch([...new Set(certificates.flatMap((c) => [c.files.cert, c.files.key]))]);
    const byName = new Map<string, LoadedCertificate[]>();
    for (const cert of certificates) {
      for (const name of cert.names) {
        const list = byName.get(name) ?? [];
        // One certificate per name and key type: the first configured wins.
        if (!list.some((c) => c.keyType === cert.keyType)) list.push(cert);
        byName.set(name, list);
      }
    }
    // One context per certificate, shared by all its names.
    const shared = contextOptions(this.#handshake, this.#tickets.lifetimeSeconds);
    const contexts = new Map<LoadedCertificate, SecureContext>();
    const contextOf = (cert: LoadedCertificate | undefined): SecureContext | undefined => {
      if (cert === undefined) return undefined;
      let context = contexts.get(cert);
      if (context === undefined) {
        context = createSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: MIN_VERSION, ...shared });
        contexts.set(cert, context);
      }
      return context;
    };
    const exact = new Map<string, NameContexts>();
    const wildcard = new Map<string, NameContexts>();
    let needsClientHello = false;
    for (const [name, list] of byName) {
      const ecdsa = list.find((c) => c.keyType === 'ec');
      const other = list.find((c) => c.keyType === 'rsa') ?? list.find((c) => c !== ecdsa);
      if (ecdsa !== undefined && other !== undefined) needsClientHello = true;
      const named = { ecdsa: contextOf(ecdsa), other: contextOf(other) };
      if (name.startsWith('*.')) wildcard.set(name.slice(2), named);
      else exact.set(name, named);
    }
    this.#needsClientHello = needsClientHello;
    this.#exact = exact;
    this.#wildcard = wildcard;
    const first = certificates[0] as LoadedCertificate;
    this.#default = byName.get(first.names[0] as string) ?? [first];
    this.#stapler.track(certificates, this.#default.length > 1 ? this.#default : []);
  }

  /** The listening server's own context: the default certificate, handshake settings, the current ticket key (a context swap would otherwise drop it). */
  #defaultContextOptions(): TlsOptions {
    return {
      ...pairsOf(this.#default),
      minVersion: MIN_VERSION,
      ...contextOptions(this.#handshake, this.#tickets.lifetimeSeconds),
      ...(this.#handshake.sessionTickets ? { ticketKeys: this.#tickets.currentKey() } : {}),
    };
  }

  #watch(files: string[]): void {
    for (const file of this.#watched) unwatchFile(file, this.#onFileChange);
    this.#watched = files;
    for (const file of files) watchFile(file, { interval: WATCH_INTERVAL_MS, persistent: false }, this.#onFileChange);
  }

  #reloadFromFiles(): void {
    try {
      const loaded = loadCertificates(this.#loaded.map((c) => c.files));
      this.replace(loaded);
      const listed = loaded.map((c) => ({ cert: c.files.cert, names: c.names, not_after: c.notAfter.toISOString() }));
      this.#log('info', { certificates: listed }, 'certificates reloaded');
    } catch (error: unknown) {
      const message = errorMessage(error);
      this.#log('error', { error: message }, 'certificate change refused; the previous certificates keep serving');
    }
  }
}

function pairsOf(list: readonly LoadedCertificate[]): { cert: string[]; key: string[] } {
  return { cert: list.map((c) => c.certPem), key: list.map((c) => c.keyPem) };
}
