/** Runs one server's active health checks on an interval with jitter, until stopped. */
import type { CheckResult, HealthPolicy, ProbeOutcome, ProbeTarget } from './probe.ts';
import { errorMessage } from '../../core/caught.ts';

export class ActiveChecker {
  readonly #target: ProbeTarget;
  readonly #policy: HealthPolicy;
  readonly #report: (result: CheckResult) => void;
  #timer: NodeJS.Timeout | undefined;
  #controller: AbortController | undefined;
  #stopped = false;
  readonly #run = (): void => void this.#check();

  constructor(target: ProbeTarget, policy: HealthPolicy, report: (result: CheckResult) => void) {
    this.#target = target;
    this.#policy = policy;
    this.#report = report;
  }

  get policy(): HealthPolicy {
    return this.#policy;
  }

  /** The first check comes soon (within the interval, at most a second), spread at random over servers. */
  start(): void {
    this.#schedule(Math.random() * Math.min(this.#policy.intervalMs, 1000));
  }

  /** No check starts after this; one in progress is aborted and its result dropped. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#controller?.abort();
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(this.#run, delay);
    // Checks never keep the process alive on their own.
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const policy = this.#policy;
    const controller = new AbortController();
    this.#controller = controller;
    const timeout = setTimeout(() => controller.abort(), policy.timeoutMs);
    const started = performance.now();
    let outcome: ProbeOutcome;
    try {
      outcome = await policy.probe.check(this.#target, controller.signal);
    } catch (error: unknown) {
      // Probes resolve rather than reject; a throw is a bug in one, reported as a failed check.
      outcome = { ok: false, detail: errorMessage(error) };
    }
    clearTimeout(timeout);
    this.#controller = undefined;
    if (this.#stopped) return;
    this.#report({ ok: outcome.ok, detail: outcome.detail, ms: Math.round((performance.now() - started) * 1000) / 1000, at: Date.now() });
    // ±jitter around the interval, so that the checks of many servers do not come in waves.
    this.#schedule(policy.intervalMs * (1 + policy.jitter * (2 * Math.random() - 1)));
  }
}
