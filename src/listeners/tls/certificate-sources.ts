/**
 * The process's certificate sources, for the composition root: each TLS listener's
 * ListenerCertificates, the local CA of each state directory, the ACME managers (kept across
 * reloads by state directory and `acme` block, shared by listeners) and the HTTP-01 challenges
 * every plain listener answers.
 */
import type { Config } from '../../config/schema.ts';
import type { AcmeManager } from './acme/acme-manager.ts';
import { Http01Challenges } from './acme/http-01.ts';
import type { AcmeEvent, AcmeSharing } from './acme/sharing.ts';
import type { CertificateLog, CertificateStore } from './certificate-store.ts';
import { ListenerCertificates, type CertificateServices } from './listener-certificates.ts';
import type { LocalCa } from './local-ca.ts';
import { errorMessage } from '../../core/caught.ts';

export class CertificateSources {
  /** ACME HTTP-01 challenges, answered on every plain listener. */
  readonly challenges = new Http01Challenges();
  readonly #log: CertificateLog;
  /** The source in use by each TLS listener (keyed by the listener). */
  readonly #inUse = new Map<object, ListenerCertificates>();
  readonly #acmeManagers = new Map<string, Promise<AcmeManager>>();
  readonly #localCas = new Map<string, Promise<LocalCa>>();
  /** Sources prepared for a change not yet committed or discarded: their ACME managers are kept. */
  readonly #prepared = new Set<ListenerCertificates>();
  /** Changes being prepared: a sweep meanwhile could stop a manager one of them just took. */
  #preparing = 0;

  /** Several worker threads: one orders ACME certificates, and challenges reach them all. */
  readonly #sharing: AcmeSharing | undefined;

  constructor(log: CertificateLog, sharing?: AcmeSharing) {
    this.#log = log;
    this.#sharing = sharing;
    if (sharing !== undefined) {
      this.challenges.publish = (token, keyAuthorization) => sharing.publish({ type: 'challenge', token, keyAuthorization });
      sharing.onEvent = (event) => this.#received(event);
    }
  }

  /** Another worker's ACME event: a challenge to answer here too, or a certificate it stored. */
  #received(event: AcmeEvent): void {
    if (event.type === 'challenge') {
      this.challenges.apply(event.token, event.keyAuthorization);
      return;
    }
    for (const manager of this.#acmeManagers.values()) {
      manager
        .then((started) => started.adopt(event.certDir, event.name))
        .catch((error: unknown) => this.#log('error', { name: event.name, error: errorMessage(error) }, 'acme: the certificate another worker stored could not be served here'));
    }
  }

  /**
   * Every TLS listener's sources (null for plain listeners), made before anything changes; when
   * one fails, those already made are stopped and the error names the listener.
   */
  async prepare(config: Config): Promise<(ListenerCertificates | null)[]> {
    this.#preparing++;
    let sources: (ListenerCertificates | null)[];
    try {
      sources = await this.#prepare(config);
    } catch (error: unknown) {
      this.#preparing--;
      // ACME managers started for the refused change stop (they would order at once).
      await this.sweep();
      throw error;
    }
    this.#preparing--;
    for (const source of sources) if (source !== null) this.#prepared.add(source);
    return sources;
  }

  async #prepare(config: Config): Promise<(ListenerCertificates | null)[]> {
    const services: CertificateServices = {
      stateDir: config.state_dir,
      challenges: this.challenges,
      localCa: () => this.#localCa(config.state_dir),
      log: this.#log,
      ...(this.#sharing === undefined ? {} : { sharing: this.#sharing }),
      acme: (acme) => {
        const key = JSON.stringify([config.state_dir, acme]);
        let manager = this.#acmeManagers.get(key);
        if (manager === undefined) {
          // acme-client (and its HTTP client) is loaded only by a configuration that uses ACME.
          const started = import('./acme/acme-manager.ts').then(({ AcmeManager }) => AcmeManager.start(acme, services));
          // A failed start is not kept: a later reload tries again (the ca_file may be there by then).
          started.catch(() => {
            if (this.#acmeManagers.get(key) === started) this.#acmeManagers.delete(key);
          });
          manager = started;
          this.#acmeManagers.set(key, manager);
        }
        return manager;
      },
    };
    const sources: (ListenerCertificates | null)[] = [];
    for (const [index, listen] of config.listen.entries()) {
      try {
        sources.push(listen.tls === undefined ? null : await ListenerCertificates.start(listen.tls, services));
      } catch (error: unknown) {
        for (const source of sources) source?.close();
        throw new Error(`listen[${index}].tls: ${errorMessage(error)}`, { cause: error });
      }
    }
    return sources;
  }

  /**
   * `source` feeds `store` (the listener's) from now on, and the source it had stops. The caller
   * has given the store `source.certificates` (with the listener's handshake settings, which a
   * replace here would not know).
   */
  use(listener: object, store: CertificateStore, source: ListenerCertificates): void {
    const previous = this.#inUse.get(listener);
    if (previous !== undefined && previous !== source) previous.close();
    source.onChange = (certificates) => store.replace(certificates);
    this.#inUse.set(listener, source);
    this.#prepared.delete(source);
  }

  /** The listener is gone: its source stops. */
  release(listener: object): void {
    this.#inUse.get(listener)?.close();
    this.#inUse.delete(listener);
  }

  /** Stops prepared sources that no listener took (a rejected change). */
  discard(sources: readonly (ListenerCertificates | null)[]): void {
    const used = new Set(this.#inUse.values());
    for (const source of sources) {
      if (source === null) continue;
      this.#prepared.delete(source);
      if (!used.has(source)) source.close();
    }
  }

  /** Stops the ACME managers no listener takes certificates from any more (after a change, at stop). */
  async sweep(): Promise<void> {
    for (const [key, pending] of [...this.#acmeManagers]) {
      const manager = await pending.catch(() => undefined);
      // A change is being prepared (a commit's sweep is not awaited): the sweep after it decides.
      if (this.#preparing > 0) return;
      if (this.#acmeManagers.get(key) !== pending) continue;
      if (manager !== undefined && this.#usedManagers().has(manager)) continue;
      manager?.close();
      this.#acmeManagers.delete(key);
    }
  }

  /** The ACME managers of the sources in use and of those prepared for a pending change. */
  #usedManagers(): Set<AcmeManager | undefined> {
    return new Set([...this.#inUse.values(), ...this.#prepared].map((source) => source.acme));
  }

  /** Stops everything (the process stops). */
  async close(): Promise<void> {
    for (const source of [...this.#inUse.values(), ...this.#prepared]) source.close();
    this.#inUse.clear();
    this.#prepared.clear();
    await this.sweep();
  }

  /** The local CA of `stateDir`, opened once; a failure is not kept, so a later reload tries again. */
  #localCa(stateDir: string): Promise<LocalCa> {
    let ca = this.#localCas.get(stateDir);
    if (ca === undefined) {
      // The X.509 library is loaded only by a configuration that uses the local CA (or ACME's fallback).
      ca = import('./local-ca.ts').then(({ LocalCa }) => LocalCa.open(stateDir));
      ca.catch(() => this.#localCas.delete(stateDir));
      this.#localCas.set(stateDir, ca);
    }
    return ca;
  }
}
