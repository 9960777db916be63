/**
 * Where a TLS listener's certificates come from, together: the configured files, the local CA
 * (`internal`) and ACME (`acme`). Files come first, so the first configured file stays the
 * default certificate; the others are added after it. Certificates Gatehouse makes itself are
 * renewed here and handed to the listener's store through `onChange`.
 */
import { join } from 'node:path';
import type { ListenerTlsConfig } from '../../config/tls-schema.ts';
import type { AcmeTlsConfig } from '../../config/tls-schema.ts';
import type { AcmeManager, AcmeServices } from './acme/acme-manager.ts';
import { loadCertificates } from './certificate-store.ts';
import type { LoadedCertificate } from './certificate.ts';
import { localCertificate, renewalTimeOf } from './issued-files.ts';
import { Alarm, backoff } from './renewal.ts';
import { errorMessage } from '../../core/caught.ts';

/** What the certificate sources need from the process (state directory, local CA, challenges, log, ACME managers). */
export interface CertificateServices extends AcmeServices {
  /** The ACME manager of an `acme` block: the running one when there is one (reloads keep them). */
  readonly acme: (config: AcmeTlsConfig) => Promise<AcmeManager>;
}

export class ListenerCertificates {
  readonly #files: LoadedCertificate[];
  #internal: LoadedCertificate | undefined;
  readonly #acme: AcmeManager | undefined;
  readonly #unsubscribe: () => void;
  readonly #alarm = new Alarm();
  #failures = 0;
  #closed = false;
  /** Called with the whole new list when a made certificate changes (renewal, ACME issuance). */
  onChange: (certificates: LoadedCertificate[]) => void = () => {};

  private constructor(files: LoadedCertificate[], internal: LoadedCertificate | undefined, acme: AcmeManager | undefined) {
    this.#files = files;
    this.#internal = internal;
    this.#acme = acme;
    this.#unsubscribe = acme?.subscribe(() => this.#changed()) ?? (() => {});
  }

  /**
   * Reads the files and makes or loads the rest; throws (naming the file) when a file is broken or
   * the state directory cannot be used. ACME orders go on in the background.
   */
  static async start(tls: ListenerTlsConfig, services: CertificateServices): Promise<ListenerCertificates> {
    const files = loadCertificates(tls.certificates);
    const names = tls.internal?.names;
    const internal = names === undefined ? undefined : await localCertificate(await services.localCa(), internalDir(services), names);
    const acme = tls.acme === undefined ? undefined : await services.acme(tls.acme);
    const made = new ListenerCertificates(files, internal, acme);
    if (names !== undefined && internal !== undefined) made.#renewInternal(names, services, renewalTimeOf(internal));
    return made;
  }

  /** Every certificate to serve, the default first. */
  get certificates(): LoadedCertificate[] {
    return [...this.#files, ...(this.#internal === undefined ? [] : [this.#internal]), ...(this.#acme?.certificates ?? [])];
  }

  /** The ACME manager this listener takes certificates from (its owner closes it when no listener does). */
  get acme(): AcmeManager | undefined {
    return this.#acme;
  }

  /** Stops renewals of the local certificate and listening to the ACME manager. */
  close(): void {
    this.#closed = true;
    this.#alarm.cancel();
    this.#unsubscribe();
  }

  #renewInternal(names: readonly string[], services: CertificateServices, at: number): void {
    this.#alarm.set(at, () => {
      void (async () => {
        try {
          const cert = await localCertificate(await services.localCa(), internalDir(services), names);
          this.#failures = 0;
          if (this.#closed) return;
          this.#internal = cert;
          services.log('info', { names, not_after: cert.notAfter.toISOString() }, 'local CA certificate renewed');
          this.#changed();
          this.#renewInternal(names, services, renewalTimeOf(cert));
        } catch (error: unknown) {
          this.#failures++;
          services.log('error', { names, error: errorMessage(error) }, 'local CA certificate renewal failed; the current one keeps serving');
          if (!this.#closed) this.#renewInternal(names, services, Date.now() + backoff(this.#failures));
        }
      })();
    });
  }

  #changed(): void {
    if (!this.#closed) this.onChange(this.certificates);
  }
}

function internalDir(services: CertificateServices): string {
  return join(services.stateDir, 'certificates', 'local');
}
