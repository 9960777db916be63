/**
 * Synchronous appends of ASCII text to stdout or a file, whole. Made for the access log, which
 * writes one batch per event-loop turn: pino's SonicBoom, used before, re-encoded every batch two
 * more times (byte length, then a Buffer copy after the write) and scheduled a tick, about a
 * third of the log's cost at cache-hit rates. The text must be ASCII: it is written as latin1,
 * one byte per character, so its length is its size.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** How long a write waits when the descriptor is a full non-blocking pipe, ms. */
const RETRY_WAIT_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class LogWriter {
  readonly #fd: number;
  readonly #owned: boolean;
  readonly #onError: (error: Error) => void;
  #failing = false;

  /** "stdout" or a file path (its directory is created; the file is appended to). Throws when it cannot be opened. */
  constructor(target: string, onError: (error: Error) => void) {
    this.#onError = onError;
    if (target === 'stdout') {
      this.#fd = 1;
      this.#owned = false;
    } else {
      mkdirSync(dirname(target), { recursive: true });
      this.#fd = openSync(target, 'a');
      this.#owned = true;
    }
  }

  /** Writes all of `text`; a failure (disk full, closed pipe) drops it and is reported once until writes work again. */
  write(text: string): void {
    let rest = text;
    while (rest.length > 0) {
      let written: number;
      try {
        written = writeSync(this.#fd, rest, null, 'latin1');
      } catch (error: unknown) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, RETRY_WAIT_MS);
          continue;
        }
        if (!this.#failing) this.#onError(error as Error);
        this.#failing = true;
        return;
      }
      rest = written === rest.length ? '' : rest.slice(written);
    }
    this.#failing = false;
  }

  close(): void {
    if (this.#owned) closeSync(this.#fd);
  }
}
