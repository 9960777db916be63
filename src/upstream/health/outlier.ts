/**
 * Passive health checking (outlier detection, as Envoy's): failures seen on real traffic eject a
 * server for a while. The counting itself is in ServerState (it runs on every response); this is
 * the policy.
 */
import type { UpstreamConfig } from '../../config/schema.ts';

/** The compiled `outlier_detection` of an upstream. */
export interface OutlierPolicy {
  /** Transport failures in a row that eject (0: never). */
  readonly consecutiveFailures: number;
  /** 5xx answers or failures in a row that eject (0: never). */
  readonly consecutive5xx: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  /** First recovery probe interval, ms (0: no probe). */
  readonly recoveryProbeMs: number;
}

/** Null when outlier detection is off. */
export function compileOutlier(config: UpstreamConfig['outlier_detection']): OutlierPolicy | null {
  if (!config.enabled || (config.consecutive_failures === 0 && config.consecutive_5xx === 0)) return null;
  return {
    consecutiveFailures: config.consecutive_failures,
    consecutive5xx: config.consecutive_5xx,
    baseEjectionMs: config.base_ejection_time,
    maxEjectionMs: config.max_ejection_time,
    maxEjectionPercent: config.max_ejection_percent,
    recoveryProbeMs: config.recovery_probe_interval,
  };
}

/** The nth ejection (1-based) lasts n base times, up to the maximum. */
export function ejectionTime(policy: OutlierPolicy, ejections: number): number {
  return Math.min(policy.baseEjectionMs * ejections, policy.maxEjectionMs);
}

/**
 * How often an ejected server is probed: the interval doubles with each ejection in a row (a
 * server that keeps failing is tried less and less often), never beyond the ejection itself.
 */
export function recoveryProbeDelay(policy: OutlierPolicy, ejections: number, ejectionMs: number): number {
  return Math.min(policy.recoveryProbeMs * 2 ** Math.max(0, ejections - 1), ejectionMs);
}

/**
 * How many of `servers` may be ejected at once: the percentage, rounded down, but at least one
 * of two or more (so that a low percentage still protects small upstreams), and never the only
 * server (a single server is better tried than refused).
 */
export function ejectionCap(servers: number, percent: number): number {
  if (servers < 2 || percent <= 0) return 0;
  return Math.max(1, Math.floor((servers * percent) / 100));
}

/**
 * Ejection counts decay while a server behaves: one less for each maximum ejection time spent
 * without being ejected, so that an old incident does not lengthen a new ejection for ever.
 */
export function decayedEjections(ejections: number, sinceLastMs: number, policy: OutlierPolicy): number {
  if (ejections === 0) return 0;
  return Math.max(0, ejections - Math.floor(sinceLastMs / Math.max(policy.maxEjectionMs, 1)));
}
