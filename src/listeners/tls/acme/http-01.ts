/**
 * ACME HTTP-01 challenges (RFC 8555 §8.3): the key authorizations Gatehouse is waiting to be asked
 * for, answered on every plain listener at GET /.well-known/acme-challenge/TOKEN before routing.
 * One set per process, shared by the ACME managers of all listeners and kept across reloads.
 */

/** The path prefix of HTTP-01 requests. */
export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export class Http01Challenges {
  readonly #tokens = new Map<string, string>();
  /** Tells the other worker threads of a change made here (workers only). */
  publish: ((token: string, keyAuthorization: string | null) => Promise<void>) | null = null;

  /** How many challenges are open: dispatch looks at the path only when some are. */
  get pending(): number {
    return this.#tokens.size;
  }

  /** Starts answering `token` with `keyAuthorization`; resolves once every worker thread does. */
  async add(token: string, keyAuthorization: string): Promise<void> {
    this.apply(token, keyAuthorization);
    await this.publish?.(token, keyAuthorization);
  }

  remove(token: string): void {
    this.apply(token, null);
    void this.publish?.(token, null);
  }

  /** A change from this thread or another: opens (`keyAuthorization`) or closes (null) a challenge. */
  apply(token: string, keyAuthorization: string | null): void {
    if (keyAuthorization === null) this.#tokens.delete(token);
    else this.#tokens.set(token, keyAuthorization);
  }

  /** The key authorization to answer a request for `path` with, or undefined when it asks for none. */
  answer(method: string, path: string): string | undefined {
    if ((method !== 'GET' && method !== 'HEAD') || !path.startsWith(CHALLENGE_PREFIX)) return undefined;
    return this.#tokens.get(path.slice(CHALLENGE_PREFIX.length));
  }
}
