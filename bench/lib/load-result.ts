// What one measured load run gives, whichever tool ran it (wrk or h2load).
export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests completed. */
  requests: number;
  /** wrk: connect + read + write + timeout socket errors; h2load: requests lost to network errors, resets or timeouts. */
  socketErrors: number;
  non2xx3xx: number;
}

/** The nearest-rank `pct` percentile of ascending `sorted` values (undefined when there are none). */
export function percentileOf(sorted: readonly number[], pct: number): number | undefined {
  return sorted[Math.min(sorted.length - 1, Math.ceil((pct / 100) * sorted.length) - 1)];
}
