/**
 * ACME with several worker threads: one thread orders (the one that runs the health checks, which
 * the primary moves when that worker dies), the others serve what it stores. HTTP-01 challenges
 * travel to every thread, because the CA's validation request may reach any worker.
 */

/** A change one thread tells the others of. */
export type AcmeEvent =
  /** A challenge opened (`keyAuthorization`) or closed (null). */
  | { readonly type: 'challenge'; readonly token: string; readonly keyAuthorization: string | null }
  /** A certificate for `name` was stored in `certDir`: load it from there. */
  | { readonly type: 'issued'; readonly certDir: string; readonly name: string };

/** A thread's side of the ACME channel. */
export interface AcmeSharing {
  /** True in the one thread that orders; the others load what it stores. */
  readonly ordersHere: boolean;
  /** Tells the other threads; an opened challenge resolves once they all answer it (or after a timeout). */
  publish(event: AcmeEvent): Promise<void>;
  /** Receives the other threads' events (set by the certificate sources). */
  onEvent: (event: AcmeEvent) => void;
}
