/**
 * The runtime state of one server of one upstream: load, latency, health (active checks, passive
 * ejection, drain) and slow start. It outlives reloads: the registry keeps it by
 * "upstream|origin", and each snapshot's Server for that address shares it, so that a reload
 * neither forgets that a server is down nor restarts its checks.
 */
import type { Logger } from 'pino';
import { Traffic } from '../core/metrics/traffic.ts';
import type { SharedState } from '../core/registry.ts';
import { ActiveChecker } from './health/active.ts';
import { decayedEjections, ejectionTime, recoveryProbeDelay, type OutlierPolicy } from './health/outlier.ts';
import type { CheckResult, HealthPolicy, HealthProbe, ProbeTarget } from './health/probe.ts';
import type { HealthSharing, ServerEvent, SharedServer } from './health/sharing.ts';
import { TcpProbe } from './health/tcp-probe.ts';

/** What the admin API shows: draining wins over down, down over ejected. */
export type ServerStatus = 'up' | 'down' | 'ejected' | 'draining';

/** The settings of the upstream a server belongs to, compiled once per snapshot. */
export interface ServerPolicy {
  readonly health: HealthPolicy | null;
  readonly outlier: OutlierPolicy | null;
  /** Ramp-up time of a server that comes back, ms (0: none). */
  readonly slowStartMs: number;
}

/** A snapshot's view of the server (a Server): where its settings come from and whom to tell. */
export interface StateOwner {
  readonly policy: ServerPolicy;
  /** Drained by the configuration. */
  readonly drain: boolean;
  /** The servers that can take traffic may have changed. */
  changed(): void;
  /** Whether one more server of the upstream may be ejected now (max_ejection_percent). */
  mayEject(): boolean;
}

/** Time constant of the latency average (as Finagle's peak EWMA): older samples weigh e^(-age/10 s). */
const EWMA_DECAY_MS = 10_000;
/** A slow start ramps in this many steps. */
const RAMP_STEPS = 20;
const NO_POLICY: ServerPolicy = { health: null, outlier: null, slowStartMs: 0 };
/** The recovery probe of an upstream without active checks: can the server be reached at all? */
const TCP_PROBE = new TcpProbe();
const RECOVERY_PROBE_TIMEOUT_MS = 2_000;

export class ServerState implements SharedState, ProbeTarget, SharedServer {
  readonly upstream: string;
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly authority: string;
  /** An https:// server. */
  readonly secure: boolean;
  /** Requests being forwarded to the server now (all snapshots). */
  inFlight = 0;
  requests = 0;
  failures = 0;
  /** Peak-EWMA of the time to response headers, ms; 0 before the first answer. */
  ewma = 0;
  #ewmaAt = 0;
  /** The result of active checks (always true without them). */
  healthy = true;
  lastCheck: CheckResult | null = null;
  #checkPasses = 0;
  #checkFailures = 0;
  /** Times ejected (decays while the server behaves). */
  ejections = 0;
  /** Times this thread ejected the server, ever (for /metrics; an ejection told by another worker is that worker's). */
  ejectionsTotal = 0;
  /** Requests answered through this server, latency and bytes (for /metrics). */
  readonly traffic = new Traffic();
  /** performance.now() when the current ejection ends; 0 when not ejected. */
  ejectedUntil = 0;
  #lastEjectionEnd = 0;
  /**
   * Back from an ejection, not yet proven (half-open, as a circuit breaker): its next answer
   * decides. A failure ejects it again at once, for longer; a good answer forgives its ejections.
   */
  onTrial = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #probeAbort: AbortController | undefined;
  #consecutiveFailures = 0;
  #consecutive5xx = 0;
  /** Taken out of rotation through the admin API. */
  adminDrain = false;
  /** performance.now() when a slow start began; -1 when none is running. */
  rampStart = -1;
  /** Can take new requests: healthy, not ejected, not draining. */
  available = true;
  #status: ServerStatus = 'up';
  #policy: ServerPolicy = NO_POLICY;
  #configDrain = false;
  readonly #owners: StateOwner[] = [];
  #checker: ActiveChecker | null = null;
  #ejectTimer: NodeJS.Timeout | undefined;
  #rampTimer: NodeJS.Timeout | undefined;
  readonly #logger: Logger | null;
  /** Other worker threads' copies of this server (null in a proxy of one thread). */
  readonly #sharing: HealthSharing | null;
  readonly #key: string;
  #closed = false;
  readonly #onCheck = (result: CheckResult): void => this.#checked(result);

  constructor(upstream: string, url: URL, logger: Logger | null = null, sharing: HealthSharing | null = null) {
    this.upstream = upstream;
    this.origin = url.origin;
    this.authority = url.host;
    this.hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.secure = url.protocol === 'https:';
    this.port = url.port === '' ? (this.secure ? 443 : 80) : Number(url.port);
    this.#logger = logger;
    this.#sharing = sharing;
    this.#key = `${upstream}|${url.origin}`;
    sharing?.subscribe(this.#key, this);
  }

  /** This worker starts running the checks (the one that ran them died), or stops. */
  checksMoved(): void {
    if (this.#closed) return;
    const health = this.#policy.health;
    const runs = this.#sharing === null || this.#sharing.runsChecks;
    if (runs && health !== null && this.#checker === null) {
      this.#checker = new ActiveChecker(this, health, this.#onCheck);
      this.#checker.start();
    } else if (!runs && this.#checker !== null) {
      this.#checker.stop();
      this.#checker = null;
    }
  }

  /**
   * What another worker found: a check's result (only one worker runs them), an ejection or its
   * end. Applied here without being told again.
   */
  applyRemote(event: ServerEvent): void {
    if (this.#closed) return;
    switch (event.kind) {
      case 'check': {
        this.lastCheck = event.result;
        if (event.healthy === null || event.healthy === this.healthy) return;
        this.healthy = event.healthy;
        if (event.healthy && this.ejectedUntil !== 0) this.#clearEjection();
        this.#refresh(`health check ${event.healthy ? 'passed' : 'failed'} (checked by another worker)`);
        return;
      }
      case 'eject': {
        if (this.ejectedUntil !== 0) return;
        this.ejections = event.ejections;
        this.#setEjection(event.remainingMs, false);
        this.#refresh(`ejected for ${Math.round(event.remainingMs)} ms by another worker after ${event.reason}`);
        return;
      }
      case 'uneject': {
        if (this.ejectedUntil === 0) return;
        this.#clearEjection();
        this.onTrial = event.onTrial;
        this.#refresh(`${event.reason} (another worker)`);
        return;
      }
      default:
        event satisfies never;
    }
  }

  get status(): ServerStatus {
    return this.#status;
  }

  get draining(): boolean {
    return this.adminDrain || this.#configDrain;
  }

  get policy(): ServerPolicy {
    return this.#policy;
  }

  /** A snapshot starts using this state; the newest owner's settings apply. */
  attach(owner: StateOwner): void {
    this.#owners.push(owner);
    this.#applyPolicy();
  }

  /** A snapshot is retired; the settings of the newest remaining owner apply again. */
  detach(owner: StateOwner): void {
    const i = this.#owners.lastIndexOf(owner);
    if (i !== -1) this.#owners.splice(i, 1);
    if (this.#owners.length > 0) this.#applyPolicy();
  }

  /** A response head arrived: any answer ends a run of failures; 5xx answers count toward consecutive_5xx. */
  onResponse(status: number): void {
    if (this.onTrial) this.#trialAnswer(status);
    if (status >= 500) {
      this.#consecutive5xx++;
      this.#consecutiveFailures = 0;
      const outlier = this.#policy.outlier;
      if (outlier !== null && outlier.consecutive5xx > 0 && this.#consecutive5xx >= outlier.consecutive5xx) {
        this.#eject(`${this.#consecutive5xx} consecutive 5xx responses`);
      }
      return;
    }
    this.#consecutiveFailures = 0;
    this.#consecutive5xx = 0;
  }

  /** A try failed in the transport (connect, reset, timeout, malformed answer), code as in the catalog. */
  onFailure(code: string): void {
    this.#consecutiveFailures++;
    this.#consecutive5xx++;
    const outlier = this.#policy.outlier;
    if (outlier === null) return;
    if (this.onTrial) {
      this.#eject(`failed its trial after an ejection (${code})`);
    } else if (outlier.consecutiveFailures > 0 && this.#consecutiveFailures >= outlier.consecutiveFailures) {
      this.#eject(`${this.#consecutiveFailures} consecutive failures (last: ${code})`);
    } else if (outlier.consecutive5xx > 0 && this.#consecutive5xx >= outlier.consecutive5xx) {
      this.#eject(`${this.#consecutive5xx} consecutive failures or 5xx responses (last: ${code})`);
    }
  }

  /** Records the time to response headers of one try (peak EWMA: a slower sample counts at once, a faster one decays in). */
  observeLatency(ms: number, now: number): void {
    if (ms >= this.ewma || this.#ewmaAt === 0) this.ewma = ms;
    else {
      const w = Math.exp(-(now - this.#ewmaAt) / EWMA_DECAY_MS);
      this.ewma = this.ewma * w + ms * (1 - w);
    }
    this.#ewmaAt = now;
  }

  /**
   * The p2c load: latency times in-flight (+1 for the request being placed), as Finagle and
   * Linkerd do. The average decays toward zero while no answer comes, so that a server once slow
   * is tried again. A server not measured yet takes one request at a time until it answers.
   */
  load(now: number): number {
    const ewma = this.ewma;
    if (ewma === 0) return this.inFlight === 0 ? 0 : 1e9 + this.inFlight;
    return ewma * Math.exp(-(now - this.#ewmaAt) / EWMA_DECAY_MS) * (this.inFlight + 1);
  }

  /** Share of its weight the server gets now: below 1 while it slow-starts. */
  share(now: number): number {
    if (this.rampStart < 0) return 1;
    const ramp = this.#policy.slowStartMs;
    if (ramp <= 0) return 1;
    return Math.min(1, Math.max(1 / RAMP_STEPS, (now - this.rampStart) / ramp));
  }

  /** Takes the server out of rotation (or puts it back) from the admin API; in-flight requests finish. */
  setAdminDrain(on: boolean): void {
    if (this.adminDrain === on) return;
    this.adminDrain = on;
    this.#refresh(on ? 'drained through the admin API' : 'drain lifted through the admin API');
  }

  /** Stops the checks and timers; the state is not used any more. */
  close(): void {
    this.#closed = true;
    this.#sharing?.unsubscribe(this.#key, this);
    this.#checker?.stop();
    this.#checker = null;
    clearTimeout(this.#ejectTimer);
    clearInterval(this.#rampTimer);
    this.#stopRecoveryProbe();
  }

  /** The first answer after an ejection: a 5xx fails the trial when 5xx answers eject, anything else passes it. */
  #trialAnswer(status: number): void {
    const outlier = this.#policy.outlier;
    if (status >= 500 && outlier !== null && outlier.consecutive5xx > 0) {
      this.#eject(`failed its trial after an ejection (status ${status})`);
      return;
    }
    this.onTrial = false;
    this.ejections = 0;
  }

  #applyPolicy(): void {
    const owner = this.#owners[this.#owners.length - 1];
    if (owner === undefined || this.#closed) return;
    this.#policy = owner.policy;
    this.#configDrain = owner.drain;
    const health = owner.policy.health;
    if (health?.key !== this.#checker?.policy.key) {
      this.#checker?.stop();
      this.#checker = null;
      if (health === null) {
        // Without checks there is nothing to keep a server down.
        this.healthy = true;
        this.lastCheck = null;
      } else if (this.#sharing === null || this.#sharing.runsChecks) {
        this.#checker = new ActiveChecker(this, health, this.#onCheck);
        this.#checker.start();
      }
      this.#checkPasses = 0;
      this.#checkFailures = 0;
    }
    if (owner.policy.outlier === null && this.ejectedUntil !== 0) this.#uneject('outlier detection turned off');
    this.#refresh('configuration');
  }

  #checked(result: CheckResult): void {
    if (this.#closed) return;
    this.lastCheck = result;
    const policy = this.#policy.health;
    if (policy === null) return;
    this.#judge(result, policy);
    if (this.#sharing === null) return;
    // Only a run of rise passes or fall failures is a verdict: a replacement of the checking worker
    // starts with every server up, and must not bring back one the others know is down.
    const settled = this.healthy ? this.#checkPasses >= policy.rise : this.#checkFailures >= policy.fall;
    this.#sharing.publish({ key: this.#key, kind: 'check', result, healthy: settled ? this.healthy : null });
  }

  /** rise and fall: a run of passes brings the server up, a run of failures takes it down. */
  #judge(result: CheckResult, policy: HealthPolicy): void {
    if (result.ok) {
      this.#checkFailures = 0;
      this.#checkPasses++;
      if (!this.healthy && this.#checkPasses >= policy.rise) {
        this.healthy = true;
        // As Envoy does: a server that proves healthy again is not kept out by an old ejection.
        if (this.ejectedUntil !== 0) this.#clearEjection();
        this.#refresh(`health check passed ${this.#checkPasses} times`);
      }
    } else {
      this.#checkPasses = 0;
      this.#checkFailures++;
      if (this.healthy && this.#checkFailures >= policy.fall) {
        this.healthy = false;
        this.#refresh(`health check failed ${this.#checkFailures} times (last: ${result.detail})`);
      }
    }
  }

  #eject(reason: string): void {
    const outlier = this.#policy.outlier;
    if (outlier === null || this.ejectedUntil !== 0 || this.#closed) return;
    const owner = this.#owners[this.#owners.length - 1];
    if (owner === undefined || !owner.mayEject()) return;
    const now = performance.now();
    this.ejections = decayedEjections(this.ejections, now - this.#lastEjectionEnd, outlier) + 1;
    this.ejectionsTotal++;
    const duration = ejectionTime(outlier, this.ejections);
    this.#consecutiveFailures = 0;
    this.#consecutive5xx = 0;
    this.#setEjection(duration, outlier.recoveryProbeMs > 0);
    this.#refresh(`ejected for ${duration} ms after ${reason}`);
    this.#sharing?.publish({ key: this.#key, kind: 'eject', remainingMs: duration, ejections: this.ejections, reason });
  }

  /** Out for `duration` ms, then back on trial; `probe`: this worker probes for an early return. */
  #setEjection(duration: number, probe: boolean): void {
    const outlier = this.#policy.outlier;
    this.ejectedUntil = performance.now() + duration;
    this.onTrial = false;
    this.#ejectTimer = setTimeout(() => this.#uneject('ejection time over; back on trial', true, false), duration);
    this.#ejectTimer.unref();
    if (probe && outlier !== null) this.#scheduleRecoveryProbe(recoveryProbeDelay(outlier, this.ejections, duration));
  }

  /** `tell`: the other workers do the same (not when each one's own timer ends the ejection). */
  #uneject(reason: string, onTrial = false, tell = true): void {
    this.#clearEjection();
    this.onTrial = onTrial;
    this.#refresh(reason);
    if (tell) this.#sharing?.publish({ key: this.#key, kind: 'uneject', onTrial, reason });
  }

  #clearEjection(): void {
    clearTimeout(this.#ejectTimer);
    this.#stopRecoveryProbe();
    this.ejectedUntil = 0;
    this.#lastEjectionEnd = performance.now();
  }

  #scheduleRecoveryProbe(delay: number): void {
    this.#probeTimer = setTimeout(() => void this.#recoveryProbe(), delay);
    this.#probeTimer.unref();
  }

  /** While ejected: the upstream's own check (or a TCP connect) lets the server back on trial as soon as it works. */
  async #recoveryProbe(): Promise<void> {
    const health = this.#policy.health;
    const probe: HealthProbe = health?.probe ?? TCP_PROBE;
    const abort = new AbortController();
    this.#probeAbort = abort;
    const timeout = setTimeout(() => abort.abort(), health?.timeoutMs ?? RECOVERY_PROBE_TIMEOUT_MS);
    const outcome = await probe.check(this, abort.signal);
    clearTimeout(timeout);
    if (abort.signal.aborted && this.#probeAbort !== abort) return;
    this.#probeAbort = undefined;
    const outlier = this.#policy.outlier;
    if (this.#closed || this.ejectedUntil === 0 || outlier === null) return;
    if (outcome.ok) {
      this.#uneject(`recovery probe passed (${outcome.detail}); back on trial`, true);
      return;
    }
    this.#scheduleRecoveryProbe(recoveryProbeDelay(outlier, this.ejections, ejectionTime(outlier, this.ejections)));
  }

  #stopRecoveryProbe(): void {
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#probeAbort?.abort();
    this.#probeAbort = undefined;
  }

  /** Recomputes availability; logs a change of status and tells every owner when availability changed. */
  #refresh(reason: string): void {
    if (this.#closed) return;
    const status: ServerStatus = this.draining ? 'draining' : !this.healthy ? 'down' : this.ejectedUntil !== 0 ? 'ejected' : 'up';
    const available = status === 'up';
    const before = this.#status;
    this.#status = status;
    if (status !== before) {
      const fields = { upstream: this.upstream, server: this.origin, from: before, to: status, reason };
      if (status === 'down' || status === 'ejected') this.#logger?.warn(fields, 'server state changed');
      else this.#logger?.info(fields, 'server state changed');
    }
    if (available === this.available) return;
    this.available = available;
    if (available) this.#startRamp();
    else this.#stopRamp();
    this.#notify();
  }

  #startRamp(): void {
    const ramp = this.#policy.slowStartMs;
    if (ramp <= 0) return;
    this.rampStart = performance.now();
    clearInterval(this.#rampTimer);
    this.#rampTimer = setInterval(() => {
      if (performance.now() - this.rampStart >= ramp) this.#stopRamp();
      this.#notify();
    }, Math.max(ramp / RAMP_STEPS, 10));
    this.#rampTimer.unref();
  }

  #stopRamp(): void {
    this.rampStart = -1;
    clearInterval(this.#rampTimer);
    this.#rampTimer = undefined;
  }

  #notify(): void {
    for (const owner of this.#owners) owner.changed();
  }
}
