/**
 * Synchronous appends of bytes to stdout or a file, whole. Made for the access log, which writes
 * one batch per event-loop turn: pino's SonicBoom, used before, re-encoded every batch two more
 * times (byte length, then a Buffer copy after the write) and scheduled a tick.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const NEWLINE = Buffer.from('\n');

/** How long a write waits when the descriptor is a full non-blocking pipe, ms, and how long in all before it gives the batch up. */
const RETRY_WAIT_MS = 10;
const RETRY_LIMIT_MS = 1000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class LogWriter {
  readonly #fd: number;
  readonly #owned: boolean;
  readonly #onError: (error: Error) => void;
  #failing = false;
  /** A batch was cut short after part of it was written: the next one starts on a new line. */
  #torn = false;
  #closed = false;

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

  /**
   * Writes all of `bytes`; a failure (disk full, closed pipe, a reader that stopped reading for a
   * second) drops the rest and is reported once until writes work again. Nothing is written once
   * closed: the descriptor number may belong to another file or socket by then.
   */
  write(bytes: Buffer): void {
    if (this.#closed) return;
    if (this.#torn) {
      if (!this.#writeAll(NEWLINE)) return;
      this.#torn = false;
    }
    if (this.#writeAll(bytes)) {
      this.#failing = false;
      this.#torn = false;
    }
  }

  #writeAll(bytes: Buffer): boolean {
    let offset = 0;
    // While writes are failing, no waiting: a reader that stalled for good would otherwise cost a second every turn.
    let waited = this.#failing ? RETRY_LIMIT_MS : 0;
    while (offset < bytes.length) {
      try {
        offset += writeSync(this.#fd, bytes, offset, bytes.length - offset);
      } catch (error: unknown) {
        // A full non-blocking pipe (stdout read by a slow collector): wait for it, as a blocking
        // write would, but not forever.
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN' && waited < RETRY_LIMIT_MS) {
          Atomics.wait(sleeper, 0, 0, RETRY_WAIT_MS);
          waited += RETRY_WAIT_MS;
          continue;
        }
        this.#torn ||= offset > 0;
        if (!this.#failing) this.#onError(error as Error);
        this.#failing = true;
        return false;
      }
    }
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) closeSync(this.#fd);
  }
}
