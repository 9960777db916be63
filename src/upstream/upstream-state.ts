/**
 * The state of one upstream that outlives reloads (kept by name in the registry): requests in
 * flight, the circuit breaker's queue, and the retry budget.
 */
import type { SharedState } from '../core/registry.ts';
import { RetryBudget } from './retry.ts';

/** A request waiting in the queue for an in-flight slot. */
export interface QueuedRequest {
  /** performance.now() when it was queued; -1 while not queued. */
  queuedAt: number;
  /** It got a slot (already counted): go on. */
  dequeued(): void;
  /** It waited past queue_timeout, or the proxy is stopping: answer 503. */
  expired(): void;
}

/** The compiled `circuit_breaker` of an upstream. */
export interface CircuitBreaker {
  /** 0: no limit. */
  readonly maxInFlight: number;
  readonly maxQueued: number;
  readonly queueTimeoutMs: number;
}

export const ADMITTED = 0;
export const QUEUED = 1;
export const REJECTED = 2;
export type Admission = typeof ADMITTED | typeof QUEUED | typeof REJECTED;

const NO_LIMITS: CircuitBreaker = { maxInFlight: 0, maxQueued: 0, queueTimeoutMs: 0 };

export class UpstreamState implements SharedState {
  readonly name: string;
  /** Requests of this upstream being forwarded (holding a slot), all snapshots together. */
  inFlight = 0;
  /** Requests waiting for a slot. */
  queued = 0;
  /** Requests refused at once by the circuit breaker. */
  rejected = 0;
  readonly budget = new RetryBudget();
  #limits: CircuitBreaker = NO_LIMITS;
  readonly #owners: CircuitBreaker[] = [];
  /** FIFO of waiting requests from #head on; entries cancelled meanwhile have queuedAt -1. */
  #queue: (QueuedRequest | undefined)[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #expire = (): void => this.#expireQueued();

  constructor(name: string) {
    this.name = name;
  }

  /** A snapshot's settings apply from now on (the newest snapshot's win). */
  attach(limits: CircuitBreaker): void {
    this.#owners.push(limits);
    this.#limits = limits;
    this.#drainQueue();
  }

  detach(limits: CircuitBreaker): void {
    const i = this.#owners.lastIndexOf(limits);
    if (i !== -1) this.#owners.splice(i, 1);
    this.#limits = this.#owners[this.#owners.length - 1] ?? NO_LIMITS;
    this.#drainQueue();
  }

  /** A new request: takes a slot (ADMITTED), waits for one (QUEUED), or is refused (REJECTED). */
  admit(request: QueuedRequest, now: number): Admission {
    if (this.take(now)) return ADMITTED;
    const limits = this.#limits;
    if (this.queued < limits.maxQueued) {
      request.queuedAt = now;
      this.#queue.push(request);
      this.queued++;
      if (this.#timer === undefined) this.#arm(limits.queueTimeoutMs);
      return QUEUED;
    }
    this.rejected++;
    return REJECTED;
  }

  /**
   * Takes a slot if one is free now, never queueing: admit's first step, and what a request moved
   * here from another upstream (GSLB spill-over) does alone (false sends it on to the next region).
   */
  take(now: number): boolean {
    this.budget.deposit(now);
    const max = this.#limits.maxInFlight;
    if (max !== 0 && this.inFlight >= max) return false;
    this.inFlight++;
    return true;
  }

  /** A request gives its slot back; the longest waiting one takes it. */
  release(): void {
    this.inFlight--;
    if (this.queued > 0) this.#drainQueue();
  }

  /** A queued request left (its client went away). */
  cancel(request: QueuedRequest): void {
    if (request.queuedAt < 0) return;
    request.queuedAt = -1;
    this.queued--;
  }

  /** Refuses every waiting request (the proxy is stopping). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let next = this.#shift(); next !== undefined; next = this.#shift()) next.expired();
  }

  #drainQueue(): void {
    const max = this.#limits.maxInFlight;
    while (this.queued > 0 && (max === 0 || this.inFlight < max)) {
      const next = this.#shift();
      if (next === undefined) break;
      this.inFlight++;
      // Not inside the finishing request's transport callback: start on the next tick.
      process.nextTick(dequeued, next);
    }
  }

  /** The oldest waiting request, left in the queue (cancelled ones in front of it are dropped). */
  #peek(): QueuedRequest | undefined {
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const next = queue[this.#head] as QueuedRequest;
      if (next.queuedAt >= 0) return next;
      queue[this.#head++] = undefined;
    }
    this.#queue = [];
    this.#head = 0;
    return undefined;
  }

  /** Removes and returns the oldest waiting request. */
  #shift(): QueuedRequest | undefined {
    const next = this.#peek();
    if (next === undefined) return undefined;
    const queue = this.#queue;
    queue[this.#head++] = undefined;
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    next.queuedAt = -1;
    this.queued--;
    return next;
  }

  /** Answers the requests that waited too long, oldest first, then waits for the next one's turn. */
  #expireQueued(): void {
    this.#timer = undefined;
    const timeout = this.#limits.queueTimeoutMs;
    const now = performance.now();
    for (let head = this.#peek(); head !== undefined; head = this.#peek()) {
      if (now - head.queuedAt < timeout) {
        this.#arm(head.queuedAt + timeout - now);
        return;
      }
      this.#shift()?.expired();
    }
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, delay));
    this.#timer.unref();
  }
}

function dequeued(request: QueuedRequest): void {
  request.dequeued();
}
