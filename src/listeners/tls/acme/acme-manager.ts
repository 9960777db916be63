/**
 * The ACME certificates of one listener: one certificate per name, loaded from the state directory
 * when still fresh, else ordered in the background. Until a name has its certificate it is served
 * one from the local CA, so the listener binds and serves at once. Renewal starts at two thirds of
 * a certificate's life; a failed order is tried again after an exponential backoff, and a name
 * that fails never holds up the others. Kept across reloads (and shared by listeners with the same
 * `acme` block) by the composition root, so a reload never orders again what is under way.
 * With several worker threads only one orders (acme/sharing.ts); the others serve what it stores.
 */
import { join } from 'node:path';
import type { AcmeTlsConfig } from '../../../config/tls-schema.ts';
import type { CertificateLog } from '../certificate-store.ts';
import type { CertificateFiles, LoadedCertificate } from '../certificate.ts';
import { loadValid, localCertificate, pairIn, renewalTimeOf, savePair, stemFor } from '../issued-files.ts';
import type { LocalCa } from '../local-ca.ts';
import { Alarm, backoff } from '../renewal.ts';
import { AcmeAccount, acmeDirFor } from './acme-account.ts';
import type { Http01Challenges } from './http-01.ts';
import type { AcmeSharing } from './sharing.ts';
import { errorMessage } from '../../../core/caught.ts';

/** How often a worker that does not order looks for what the ordering one stored (its event usually comes first). */
const FOLLOWER_RECHECK_MS = 30_000;

/** What the manager uses from the process. */
export interface AcmeServices {
  readonly stateDir: string;
  readonly challenges: Http01Challenges;
  readonly localCa: () => Promise<LocalCa>;
  readonly log: CertificateLog;
  /** Several worker threads: which one orders, and the channel to the others. */
  readonly sharing?: AcmeSharing;
}

/** One name's state. */
interface NameState {
  readonly name: string;
  /** What is served for the name: the ACME certificate, or the local fallback. */
  cert: LoadedCertificate;
  /** True once `cert` came from the ACME server. */
  issued: boolean;
  /** Failed orders in a row. */
  failures: number;
  readonly alarm: Alarm;
}

export class AcmeManager {
  readonly #config: AcmeTlsConfig;
  readonly #services: AcmeServices;
  readonly #account: AcmeAccount;
  readonly #certDir: string;
  readonly #names: NameState[] = [];
  /** Orders run one at a time: gentle on the CA, and the challenges of one never mix with another's. */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Told when a name's certificate changes. */
  readonly #subscribers = new Set<() => void>();

  private constructor(config: AcmeTlsConfig, services: AcmeServices) {
    this.#config = config;
    this.#services = services;
    const dir = acmeDirFor(services.stateDir, config.directory);
    this.#certDir = join(dir, 'certificates');
    this.#account = new AcmeAccount({ directory: config.directory, email: config.email, caFile: config.ca_file }, dir, services.challenges);
  }

  /** Loads what is stored, makes fallbacks for the rest, and starts ordering in the background. */
  static async start(config: AcmeTlsConfig, services: AcmeServices): Promise<AcmeManager> {
    const manager = new AcmeManager(config, services);
    try {
      for (const name of config.names) {
        // A stored certificate serves while valid, even when due for renewal (renewed at once then).
        const stored = manager.#stored(name);
        const cert = stored ?? (await manager.#fallback(name));
        const state: NameState = { name, cert, issued: stored !== undefined, failures: 0, alarm: new Alarm() };
        manager.#names.push(state);
        if (stored !== undefined) services.log('info', { name, not_after: stored.notAfter.toISOString() }, 'ACME certificate loaded from the state directory');
        manager.#schedule(state, stored === undefined ? Date.now() : renewalTimeOf(stored));
      }
    } catch (error: unknown) {
      // Nobody will hold this manager: the orders already scheduled for earlier names must not run.
      manager.close();
      throw error;
    }
    return manager;
  }

  /** The certificates to serve, in the configured order of names. */
  get certificates(): LoadedCertificate[] {
    return this.#names.map((state) => state.cert);
  }

  /** Calls `listener` whenever a certificate changes; returns what stops it. */
  subscribe(listener: () => void): () => void {
    const entry = (): void => listener();
    this.#subscribers.add(entry);
    return () => this.#subscribers.delete(entry);
  }

  /** Stops renewing; an order under way finishes and is stored, but no longer served from here. */
  close(): void {
    this.#closed = true;
    for (const state of this.#names) state.alarm.cancel();
  }

  #notify(): void {
    for (const subscriber of this.#subscribers) subscriber();
  }

  /** Where the ACME certificate of `name` is stored. */
  #filesOf(name: string): CertificateFiles {
    return pairIn(this.#certDir, stemFor([name]));
  }

  /** The stored ACME certificate of `name` while it is valid and names it. */
  #stored(name: string): LoadedCertificate | undefined {
    return loadValid(this.#filesOf(name), (cert) => cert.names.includes(name));
  }

  /** A local CA certificate for a name that has no ACME one yet. */
  async #fallback(name: string): Promise<LoadedCertificate> {
    return localCertificate(await this.#services.localCa(), join(this.#services.stateDir, 'certificates', 'fallback'), [name]);
  }

  #schedule(state: NameState, at: number): void {
    state.alarm.set(at, () => {
      this.#queue = this.#queue.then(() => this.#order(state));
    });
  }

  /** Another worker stored a certificate for `name` in `certDir`: serve it. */
  adopt(certDir: string, name: string): void {
    const state = this.#names.find((candidate) => candidate.name === name);
    if (this.#closed || certDir !== this.#certDir || state === undefined) return;
    this.#adoptStored(state);
  }

  /**
   * Serves the stored certificate when it is newer than the one served (another worker ordered
   * it); true when it did and that one is not yet due for renewal.
   */
  #adoptStored(state: NameState): boolean {
    const stored = this.#stored(state.name);
    if (stored === undefined || (state.issued && stored.notAfter.getTime() <= state.cert.notAfter.getTime())) return false;
    state.cert = stored;
    state.issued = true;
    state.failures = 0;
    this.#notify();
    const due = renewalTimeOf(stored);
    if (due <= Date.now()) return false;
    this.#schedule(state, due);
    return true;
  }

  async #order(state: NameState): Promise<void> {
    if (this.#closed || this.#adoptStored(state)) return;
    if (this.#services.sharing?.ordersHere === false) {
      this.#schedule(state, Date.now() + FOLLOWER_RECHECK_MS);
      if (!state.issued && Date.now() >= renewalTimeOf(state.cert)) await this.#renewFallback(state);
      return;
    }
    const { name } = state;
    this.#services.log('info', { name, directory: this.#config.directory }, 'ordering an ACME certificate');
    try {
      const pem = await this.#account.order(name);
      const cert = await savePair(this.#filesOf(name), pem);
      void this.#services.sharing?.publish({ type: 'issued', certDir: this.#certDir, name });
      state.failures = 0;
      this.#services.log('info', { name, not_after: cert.notAfter.toISOString() }, 'ACME certificate obtained');
      if (this.#closed) return;
      state.cert = cert;
      state.issued = true;
      this.#notify();
      this.#schedule(state, renewalTimeOf(cert));
    } catch (error: unknown) {
      state.failures++;
      const wait = backoff(state.failures);
      this.#services.log(
        'error',
        { name, error: errorMessage(error), failures: state.failures, retry_in_s: Math.round(wait / 1000), serving: state.issued ? 'the previous certificate' : 'a local fallback' },
        'ACME order failed',
      );
      if (this.#closed) return;
      this.#schedule(state, Date.now() + wait);
      // Orders may fail for days: the short-lived fallback is renewed meanwhile.
      if (!state.issued && Date.now() >= renewalTimeOf(state.cert)) await this.#renewFallback(state);
    }
  }

  async #renewFallback(state: NameState): Promise<void> {
    try {
      state.cert = await this.#fallback(state.name);
      this.#notify();
    } catch (error: unknown) {
      this.#services.log('error', { name: state.name, error: errorMessage(error) }, 'local fallback certificate renewal failed');
    }
  }
}
