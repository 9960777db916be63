/**
 * OCSP stapling (RFC 6066 §8, RFC 6960): for each served certificate that names a responder, a
 * response is fetched ahead of time, cached and handed to clients that ask for it in the
 * handshake. It is refreshed halfway to its nextUpdate; when the responder fails, the last good
 * response keeps being stapled until it expires, and retries back off. A handshake never waits
 * for the responder: without a fresh response it simply goes without a staple.
 */
import type { Server as TlsServer } from 'node:tls';
import type { LoadedCertificate } from './certificate.ts';
import type { OcspResponse, OcspSubject } from './ocsp.ts';
import { ocspTargetOf, type OcspTarget } from './ocsp-target.ts';
import { backoff } from './renewal.ts';

/** The OCSP protocol module, loaded the first time a certificate names a responder (see ocsp-target.ts). */
let protocol: Promise<typeof import('./ocsp.ts')> | undefined;
const loadProtocol = (): Promise<typeof import('./ocsp.ts')> => (protocol ??= import('./ocsp.ts'));

/** Reports fetched responses and failures. */
export type OcspLog = (level: 'info' | 'error', fields: Record<string, unknown>, message: string) => void;

/** How a stapler fetches responses (a test can shorten the delays). */
export interface OcspTiming {
  /** The first retry after a failure; each further one waits twice as long. */
  readonly retryMin: number;
  /** Retries back off up to this. */
  readonly retryMax: number;
  /** Never refresh a good response sooner than this. */
  readonly refreshMin: number;
  /** Never keep a good response longer than this without asking again (a revocation shows up within it). */
  readonly refreshMax: number;
}

/** One minute to one hour between failed tries; good responses are asked again between once a minute and once a day. */
export const DEFAULT_OCSP_TIMING: OcspTiming = { retryMin: 60_000, retryMax: 3_600_000, refreshMin: 60_000, refreshMax: 86_400_000 };

interface Entry {
  readonly target: OcspTarget;
  /** Made at the first fetch (it needs the OCSP module). */
  subject: OcspSubject | null;
  /** The certificate shares the server's default context with one of another key type. */
  ambiguous: boolean;
  readonly name: string;
  response: OcspResponse | null;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

/**
 * When to ask again after a good response: halfway between its thisUpdate and nextUpdate, so a
 * failed refresh leaves half the validity for retries (half of what is left when that point has
 * passed, as with a response fetched late); within `refreshMin` and `refreshMax`.
 */
export function refreshDelay(response: OcspResponse, now: number, timing: OcspTiming = DEFAULT_OCSP_TIMING): number {
  const thisUpdate = response.thisUpdate.getTime();
  const nextUpdate = response.nextUpdate.getTime();
  let delay = thisUpdate + (nextUpdate - thisUpdate) / 2 - now;
  if (delay <= 0) delay = (nextUpdate - now) / 2;
  return Math.max(timing.refreshMin, Math.min(timing.refreshMax, Math.floor(delay)));
}

/** When to try again after the `failures`-th failure in a row, kept before the current response expires. */
export function retryDelay(failures: number, response: OcspResponse | null, now: number, timing: OcspTiming = DEFAULT_OCSP_TIMING): number {
  const wait = backoff(failures, timing.retryMin, timing.retryMax);
  if (response === null) return wait;
  const left = response.nextUpdate.getTime() - now;
  return left > timing.retryMin ? Math.min(wait, Math.floor(left / 2)) : wait;
}

export class OcspStapler {
  readonly #log: OcspLog;
  readonly #timing: OcspTiming;
  /** Aborts fetches in flight when the stapler closes. */
  readonly #stop = new AbortController();
  #entries: Entry[] = [];
  /** The server whose 'OCSPRequest' event this stapler answers, once attached. */
  #server: TlsServer | null = null;
  #listening = false;
  /**
   * True while the SNI callback hands node:tls a context of one certificate. A context holding an
   * ECDSA and an RSA certificate (the server's default one) reports one of them to 'OCSPRequest'
   * while OpenSSL may serve the other, chosen later in the handshake: a staple for the wrong
   * certificate is worse than none, so certificates of such a context are stapled only when SNI
   * chose their own context.
   */
  singleCertificate = false;

  constructor(log: OcspLog, timing: OcspTiming = DEFAULT_OCSP_TIMING) {
    this.#log = log;
    this.#timing = timing;
  }

  /**
   * node:tls 'OCSPRequest' listener: the staple for the certificate chosen for this handshake, or
   * none. Answers at once (from the cache), so handshakes never wait on a responder.
   */
  readonly onOcspRequest = (certificate: Buffer, _issuer: Buffer | null, callback: (error: Error | null, response?: Buffer) => void): void => {
    // A handful of certificates at most: comparing DER bytes is cheaper than hashing them for a map key.
    for (const entry of this.#entries) {
      if (!entry.target.der.equals(certificate)) continue;
      if (entry.ambiguous && !this.singleCertificate) break;
      const response = entry.response;
      if (response !== null && response.nextUpdate.getTime() > Date.now()) return callback(null, response.der);
      break;
    }
    callback(null);
  };

  /**
   * Attaches the stapler to a listening TLS server. It listens only while a certificate names a
   * responder: with a listener, node:tls copies the certificate and looks up its issuer for every
   * handshake whose client asks for a staple (most do), only to staple nothing.
   */
  attach(server: TlsServer): void {
    this.#server = server;
    this.#listen();
  }

  #listen(): void {
    const server = this.#server;
    const wanted = this.#entries.length > 0;
    if (server === null || wanted === this.#listening) return;
    if (wanted) server.on('OCSPRequest', this.onOcspRequest);
    else server.removeListener('OCSPRequest', this.onOcspRequest);
    this.#listening = wanted;
  }

  /**
   * The certificates now served: new ones are fetched, unchanged ones keep their response, removed
   * ones are forgotten. `sharingDefault`: the certificates of a default context that holds several.
   */
  track(certificates: readonly LoadedCertificate[], sharingDefault: readonly LoadedCertificate[] = []): void {
    const previous = this.#entries;
    const next: Entry[] = [];
    for (const cert of certificates) {
      let target: OcspTarget | null;
      try {
        target = ocspTargetOf(cert.certPem);
      } catch (error: unknown) {
        this.#log('error', { cert: cert.files.cert, error: messageOf(error) }, 'OCSP stapling off for this certificate');
        continue;
      }
      if (target === null || next.some((e) => e.target.der.equals(target.der))) continue;
      const ambiguous = sharingDefault.some((c) => c.certPem === cert.certPem);
      const kept = previous.find((e) => e.target.der.equals(target.der) && !e.closed);
      if (kept !== undefined) {
        kept.ambiguous = ambiguous;
        next.push(kept);
        continue;
      }
      const entry: Entry = { target, subject: null, ambiguous, name: cert.names[0] ?? cert.files.cert, response: null, failures: 0, timer: undefined, closed: false };
      next.push(entry);
      void this.#refresh(entry);
    }
    for (const old of previous) if (!next.includes(old)) this.#forget(old);
    this.#entries = next;
    this.#listen();
  }

  /** The cached response of a certificate (DER), if any; for status pages and tests. */
  responseFor(certificateDer: Buffer): OcspResponse | null {
    return this.#entries.find((e) => e.target.der.equals(certificateDer))?.response ?? null;
  }

  /** Stops every refresh. */
  close(): void {
    for (const entry of this.#entries) this.#forget(entry);
    this.#entries = [];
    this.#listen();
    this.#stop.abort();
  }

  async #refresh(entry: Entry): Promise<void> {
    entry.timer = undefined;
    let delay: number;
    try {
      const ocsp = await loadProtocol();
      entry.subject ??= ocsp.ocspSubjectFor(entry.target);
      const response = await ocsp.fetchOcspResponse(entry.subject, this.#stop.signal);
      if (entry.closed) return;
      entry.response = response;
      entry.failures = 0;
      delay = refreshDelay(response, Date.now(), this.#timing);
      const fields = { name: entry.name, status: response.status, next_update: response.nextUpdate.toISOString() };
      if (response.status === 'good') this.#log('info', fields, 'OCSP response fetched');
      else this.#log('error', fields, `OCSP responder says this certificate is ${response.status}`);
    } catch (error: unknown) {
      if (entry.closed) return;
      entry.failures += 1;
      delay = retryDelay(entry.failures, entry.response, Date.now(), this.#timing);
      const keeps = entry.response !== null && entry.response.nextUpdate.getTime() > Date.now();
      this.#log(
        'error',
        { name: entry.name, url: entry.target.url, error: messageOf(error), retry_in_ms: delay },
        keeps ? 'OCSP fetch failed; the previous response keeps being stapled' : 'OCSP fetch failed; handshakes go without a staple',
      );
    }
    entry.timer = setTimeout(() => void this.#refresh(entry), delay);
    entry.timer.unref();
  }

  #forget(entry: Entry): void {
    entry.closed = true;
    clearTimeout(entry.timer);
  }
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}
