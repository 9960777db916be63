/**
 * When a certificate is renewed, and how long to wait after a failed attempt: pure functions, and
 * one timer that copes with waits longer than setTimeout allows.
 */

/** Renewal starts when two thirds of the certificate's life have passed (as Caddy and certbot do). */
export function renewalTime(notBefore: Date, notAfter: Date): number {
  const start = notBefore.getTime();
  return start + ((notAfter.getTime() - start) * 2) / 3;
}

/** The first wait after a failure; each further failure doubles it. */
export const FIRST_BACKOFF_MS = 60_000;
/** The longest wait between attempts. */
export const MAX_BACKOFF_MS = 24 * 3_600_000;

/** The wait after `failures` failed attempts in a row (1 for the first): exponential, capped. */
export function backoff(failures: number, first = FIRST_BACKOFF_MS, max = MAX_BACKOFF_MS): number {
  return Math.min(max, first * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** setTimeout takes at most 2^31-1 ms (~24.8 days); longer waits are made of shorter ones. */
const LONGEST_TIMEOUT_MS = 2 ** 31 - 1;

/** Runs `task` at a time (ms since the epoch), or now if it has passed; never keeps the process alive. */
export class Alarm {
  #timer: NodeJS.Timeout | undefined;

  /** Replaces any earlier setting. */
  set(at: number, task: () => void): void {
    this.cancel();
    const wait = Math.max(0, at - Date.now());
    const step = Math.min(wait, LONGEST_TIMEOUT_MS);
    this.#timer = setTimeout(() => (step === wait ? task() : this.set(at, task)), step);
    this.#timer.unref();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
