/** Active health checking: the probe interface and the compiled settings of an upstream's checks. */

/** The server a probe checks. */
export interface ProbeTarget {
  /** Host name or IP address (IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number;
  /** host:port, the default Host header of an HTTP check. */
  readonly authority: string;
  /** An https:// server: HTTP checks go over TLS, with the upstream's TLS settings. */
  readonly secure: boolean;
}

/** What one check found. */
export interface ProbeOutcome {
  readonly ok: boolean;
  /** Short and loggable: "200", "status 500 not expected", "ECONNREFUSED", "timeout". */
  readonly detail: string;
}

/** One check of one server; implementations are registered by `health_check.type` in ./index.ts. */
export interface HealthProbe {
  /**
   * Resolves with the outcome, never rejects. `signal` aborts the check (its timeout, or the
   * checker stopping); the outcome is then a failure.
   */
  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome>;
}

/** A check's outcome as kept for the admin API. */
export interface CheckResult extends ProbeOutcome {
  /** How long the check took, ms. */
  readonly ms: number;
  /** When it finished, ms since the epoch. */
  readonly at: number;
}

/** The compiled `health_check` of an upstream. */
export interface HealthPolicy {
  readonly probe: HealthProbe;
  readonly intervalMs: number;
  readonly jitter: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** Identifies the settings: a checker restarts only when this changes across a reload. */
  readonly key: string;
}
