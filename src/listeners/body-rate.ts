/**
 * The minimum request-body rate (`limits.body_min_rate`), against slow-POST clients that keep a
 * request, and the backend connection it holds, open by sending a byte now and then. As Apache's
 * mod_reqtimeout MinRate: after the grace period a body must have delivered `rate` bytes for
 * every second past it. Time during which Gatehouse itself is not reading (the backend is slow to
 * take the body, or the request is held back by a rate limit) does not count against the client.
 *
 * No timer or listener per request: bodies in flight sit in one set that a single timer sweeps
 * while it is not empty, measuring progress with the socket's byte counter.
 */
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import type { ProtectionCounters } from '../core/protection-state.ts';
import { sendError } from './respond.ts';

interface Watched {
  readonly ex: Exchange;
  readonly rate: number;
  readonly grace: number;
  readonly counters: ProtectionCounters;
  readonly startBytes: number;
  last: number;
  /** Milliseconds during which Gatehouse was reading the body. */
  active: number;
}

/** Written on the socket, as node:http does for its own timeouts, when no answer has started. */
const TIMEOUT_RESPONSE = Buffer.from('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');

export class BodyRateWatch {
  readonly #watched = new Set<Watched>();
  #timer: NodeJS.Timeout | null = null;
  /** How often progress is checked (ms). */
  readonly interval: number;

  constructor(interval = 250) {
    this.interval = interval;
  }

  get size(): number {
    return this.#watched.size;
  }

  add(ex: Exchange, rate: number, grace: number, counters: ProtectionCounters): void {
    const socket = ex.req.socket;
    this.#watched.add({ ex, rate, grace, counters, startBytes: socket.bytesRead, last: performance.now(), active: 0 });
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.sweep(), this.interval);
      this.#timer.unref();
    }
  }

  sweep(): void {
    const now = performance.now();
    for (const entry of this.#watched) {
      const req = entry.ex.req;
      if (req.complete || req.destroyed || entry.ex.finished) {
        this.#watched.delete(entry);
        continue;
      }
      const elapsed = now - entry.last;
      entry.last = now;
      // Not reading, or holding unread data: the client is not the one holding things up.
      if (req.readableFlowing !== true || req.readableLength > 0) continue;
      entry.active += elapsed;
      const over = entry.active - entry.grace;
      if (over <= 0) continue;
      const received = req.socket.bytesRead - entry.startBytes;
      if (received >= (over / 1000) * entry.rate) continue;
      this.#watched.delete(entry);
      this.#cut(entry);
    }
    if (this.#watched.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #cut(entry: Watched): void {
    entry.counters.slow_bodies++;
    const { ex } = entry;
    ex.errorCode = 'BODY_TOO_SLOW';
    if (ex.h2) {
      // One stream of a shared connection: only it is answered and ended.
      if (!ex.res.headersSent) sendError(ex, new GatehouseError('BODY_TOO_SLOW'));
      ex.res.destroy();
      return;
    }
    const socket = ex.req.socket;
    if (!ex.res.headersSent && socket.writable) socket.write(TIMEOUT_RESPONSE);
    socket.destroy();
  }
}
