/**
 * Request counters kept as plain numbers on objects the hot path already holds (a route, a
 * server's state), read at scrape time: no label lookup or hashing per request, as prom-client's
 * `labels(...).inc()` would do. Kept by stable key across reloads (core/registry.ts).
 */
import type { SharedState } from '../registry.ts';

/** Upper bounds of the latency buckets, in seconds (Prometheus' defaults, from 1 ms). */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The label of each status class slot: 1xx to 5xx, and "none" for a request that got no answer (0). */
export const STATUS_CLASSES: readonly string[] = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** A status code's slot in STATUS_CLASSES. */
export function statusClass(status: number): number {
  const c = (status / 100) | 0;
  return c >= 1 && c <= 5 ? c : 0;
}

/** A cumulative-at-read latency histogram: counts per bucket (the last one +Inf), their sum. */
export class Histogram {
  /** Observations per bucket, not cumulative (the scrape adds them up). */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  /** Sum of observations, seconds. */
  sum = 0;

  observe(seconds: number): void {
    let i = 0;
    const n = LATENCY_BUCKETS.length;
    while (i < n && seconds > (LATENCY_BUCKETS[i] as number)) i++;
    this.counts[i]! += 1;
    this.sum += seconds;
  }

  /** Observations in all. */
  get count(): number {
    let total = 0;
    for (const c of this.counts) total += c;
    return total;
  }
}

/** What went through one route, or to one server: requests by status class, latency, body bytes. */
export class Traffic implements SharedState {
  /** Requests by status class (see STATUS_CLASSES). */
  readonly requests = new Float64Array(STATUS_CLASSES.length);
  readonly latency = new Histogram();
  /** Request body bytes received (see docs/admin-api.md#metrics). */
  bytesIn = 0;
  /** Response body bytes sent. */
  bytesOut = 0;

  close(): void {
    // Plain numbers: nothing to stop.
  }
}
