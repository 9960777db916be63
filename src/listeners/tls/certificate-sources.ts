/**
 * The process's certificate sources, for the composition root: each TLS listener's
 * ListenerCertificates, the local CA of each state directory, the ACME managers (kept across
 * reloads by state directory and `acme` block, shared by listeners) and the HTTP-01 challenges
 * every plain listener answers.
 */
import type { Config } from '../../config/schema.ts';
import { AcmeManager } from './acme/acme-manager.ts';
import { Http01Challenges } from './acme/http-01.ts';
import type { CertificateLog, CertificateStore } from './certificate-store.ts';
import { ListenerCertificates, type CertificateServices } from './listener-certificates.ts';
import { LocalCa } from './local-ca.ts';

export class CertificateSources {
  /** ACME HTTP-01 challenges, answered on every plain listener. */
  readonly challenges = new Http01Challenges();
  readonly #log: CertificateLog;
  /** The source in use by each TLS listener (keyed by the listener). */
  readonly #inUse = new Map<object, ListenerCertificates>();
  readonly #acmeManagers = new Map<string, Promise<AcmeManager>>();
  readonly #localCas = new Map<string, Promise<LocalCa>>();

  constructor(log: CertificateLog) {
    this.#log = log;
  }

  /**
   * Every TLS listener's sources (null for plain listeners), made before anything changes; when
   * one fails, those already made are stopped and the error names the listener.
   */
  async prepare(config: Config): Promise<(ListenerCertificates | null)[]> {
    const services: CertificateServices = {
      stateDir: config.state_dir,
      challenges: this.challenges,
      localCa: () => this.#localCa(config.state_dir),
      log: this.#log,
      acme: (acme) => {
        const key = JSON.stringify([config.state_dir, acme]);
        let manager = this.#acmeManagers.get(key);
        if (manager === undefined) {
          manager = AcmeManager.start(acme, services);
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
        throw new Error(`listen[${index}].tls: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
    return sources;
  }

  /** Serves `source`'s certificates through `store` (the listener's) from now on, stopping the source it had. */
  use(listener: object, store: CertificateStore, source: ListenerCertificates): void {
    const previous = this.#inUse.get(listener);
    if (previous !== undefined && previous !== source) {
      previous.close();
      store.replace(source.certificates);
    }
    source.onChange = (certificates) => store.replace(certificates);
    this.#inUse.set(listener, source);
  }

  /** The listener is gone: its source stops. */
  release(listener: object): void {
    this.#inUse.get(listener)?.close();
    this.#inUse.delete(listener);
  }

  /** Stops prepared sources that no listener took (a rejected change). */
  discard(sources: readonly (ListenerCertificates | null)[]): void {
    const used = new Set(this.#inUse.values());
    for (const source of sources) if (source !== null && !used.has(source)) source.close();
  }

  /** Stops the ACME managers no listener takes certificates from any more (after a change, at stop). */
  async sweep(): Promise<void> {
    const used = new Set([...this.#inUse.values()].map((source) => source.acme));
    for (const [key, pending] of this.#acmeManagers) {
      const manager = await pending.catch(() => undefined);
      if (manager !== undefined && used.has(manager)) continue;
      manager?.close();
      this.#acmeManagers.delete(key);
    }
  }

  /** Stops everything (the process stops). */
  async close(): Promise<void> {
    for (const source of this.#inUse.values()) source.close();
    this.#inUse.clear();
    await this.sweep();
  }

  /** The local CA of `stateDir`, opened once; a failure is not kept, so a later reload tries again. */
  #localCa(stateDir: string): Promise<LocalCa> {
    let ca = this.#localCas.get(stateDir);
    if (ca === undefined) {
      ca = LocalCa.open(stateDir);
      ca.catch(() => this.#localCas.delete(stateDir));
      this.#localCas.set(stateDir, ca);
    }
    return ca;
  }
}
