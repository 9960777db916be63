/**
 * Per-second traffic aggregates for the live dashboard (admin/live.ts): requests, server errors
 * (5xx) and a latency histogram per second for the last minute, the last error answers, and the
 * clients most often refused (403) or rate limited (429). Fed once per finished request, next to
 * the access log; a request costs a few integer increments into fixed typed arrays and no
 * allocation. Only error and refused answers do more (they are rare, and bounded).
 */
import type { Exchange } from './exchange.ts';

/** Seconds of history kept. */
export const TRAFFIC_SECONDS = 60;
/** Latency buckets: four per doubling from 0.1 ms, the last one open (~ 100 s and more). */
export const LATENCY_BUCKETS = 80;
const BUCKETS_PER_DOUBLING = 4;
const FIRST_BUCKET_MS = 0.1;
/** Error answers kept for the dashboard. */
export const RECENT_ERRORS = 20;
/** Refused clients counted per minute at most: a flood of addresses must not grow memory. */
const MAX_REFUSED_CLIENTS = 1_000;
/** Request paths are cut to this length in the recent errors. */
const MAX_PATH = 200;

/** One error answer (5xx). */
export interface RecentError {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly route: string | null;
  readonly upstream: string | null;
  readonly server: string | null;
  /** The error catalog code (core/errors.ts), when Gatehouse made the answer. */
  readonly code: string | null;
}

/** A client refused by the access rules (`denied`) or a rate limit or ban (`limited`). */
export interface RefusedClient {
  readonly client: string;
  denied: number;
  limited: number;
}

/**
 * The last TRAFFIC_SECONDS complete seconds, oldest first, ending with the epoch second `end`:
 * plain data, so that worker threads can send it to the primary (a structured clone).
 */
export interface TrafficWindow {
  readonly end: number;
  readonly requests: Uint32Array;
  /** Answers with status 500 and above (Gatehouse's own and the servers'). */
  readonly errors: Uint32Array;
  /** Per second, LATENCY_BUCKETS counts: second i's bucket b is at i * LATENCY_BUCKETS + b. */
  readonly latency: Uint32Array;
  readonly recentErrors: readonly RecentError[];
  /** Counts over the current and the previous minute. */
  readonly refused: readonly RefusedClient[];
}

/** The latency bucket of a duration in milliseconds. */
export function latencyBucket(ms: number): number {
  if (!(ms > FIRST_BUCKET_MS)) return 0;
  const bucket = Math.ceil(Math.log2(ms / FIRST_BUCKET_MS) * BUCKETS_PER_DOUBLING);
  return bucket < LATENCY_BUCKETS ? bucket : LATENCY_BUCKETS - 1;
}

/** The upper bound of a bucket, in milliseconds (what a percentile in it is reported as). */
export function bucketUpperMs(bucket: number): number {
  return FIRST_BUCKET_MS * 2 ** (bucket / BUCKETS_PER_DOUBLING);
}

/** One thread's aggregates for the dashboard: the second being counted, and the ring of the last minute. */
export class TrafficRecorder {
  // The second being counted.
  #requests = 0;
  #errors = 0;
  readonly #latency = new Uint32Array(LATENCY_BUCKETS);
  /** The epoch second the counts above belong to. */
  #second = epochSecond();
  // The history, a ring indexed by epoch second modulo TRAFFIC_SECONDS.
  readonly #ringRequests = new Uint32Array(TRAFFIC_SECONDS);
  readonly #ringErrors = new Uint32Array(TRAFFIC_SECONDS);
  readonly #ringLatency = new Uint32Array(TRAFFIC_SECONDS * LATENCY_BUCKETS);
  #ringEnd = this.#second - 1;
  readonly #recentErrors: RecentError[] = [];
  #refused = new Map<string, RefusedClient>();
  #refusedBefore = new Map<string, RefusedClient>();
  #refusedMinute = Math.floor(this.#second / 60);
  readonly #timer: NodeJS.Timeout;

  constructor() {
    // Checked four times a second, so a second is closed soon after it ends (a busy loop may let
    // it hold a little of the next).
    this.#timer = setInterval(() => this.roll(), 250);
    this.#timer.unref();
  }

  /** Counts a finished request (called where the access log line is written). */
  record(ex: Exchange): void {
    this.#requests++;
    this.#latency[latencyBucket(ex.elapsedMs())]!++;
    const status = ex.status;
    if (status >= 500) {
      this.#errors++;
      this.#recordError(ex);
    } else if (status === 403 || status === 429) {
      const code = ex.errorCode;
      if (code === 'FORBIDDEN' || code === 'TOO_MANY_REQUESTS') this.#recordRefused(ex.client, code === 'FORBIDDEN');
    }
  }

  /** Closes the current second into the history (the timer does it each second; tests may too). */
  roll(now = epochSecond()): void {
    if (now <= this.#second) return;
    // Seconds nobody counted (an idle or stalled loop) become zeros.
    for (let s = Math.max(this.#ringEnd + 1, now - TRAFFIC_SECONDS); s < now; s++) this.#clearSlot(s);
    const slot = this.#second % TRAFFIC_SECONDS;
    this.#ringRequests[slot] = this.#requests;
    this.#ringErrors[slot] = this.#errors;
    this.#ringLatency.set(this.#latency, slot * LATENCY_BUCKETS);
    this.#requests = 0;
    this.#errors = 0;
    this.#latency.fill(0);
    this.#second = now;
    this.#ringEnd = now - 1;
    const minute = Math.floor(now / 60);
    if (minute !== this.#refusedMinute) {
      this.#refusedBefore = minute === this.#refusedMinute + 1 ? this.#refused : new Map();
      this.#refusedMinute = minute;
      this.#refused = new Map();
    }
  }

  /** The last TRAFFIC_SECONDS complete seconds (a copy). */
  window(): TrafficWindow {
    this.roll();
    const end = this.#ringEnd;
    const requests = new Uint32Array(TRAFFIC_SECONDS);
    const errors = new Uint32Array(TRAFFIC_SECONDS);
    const latency = new Uint32Array(TRAFFIC_SECONDS * LATENCY_BUCKETS);
    for (let i = 0; i < TRAFFIC_SECONDS; i++) {
      const slot = (end - TRAFFIC_SECONDS + 1 + i) % TRAFFIC_SECONDS;
      requests[i] = this.#ringRequests[slot]!;
      errors[i] = this.#ringErrors[slot]!;
      latency.set(this.#ringLatency.subarray(slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS), i * LATENCY_BUCKETS);
    }
    return { end, requests, errors, latency, recentErrors: [...this.#recentErrors], refused: this.#refusedClients() };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #clearSlot(second: number): void {
    const slot = second % TRAFFIC_SECONDS;
    this.#ringRequests[slot] = 0;
    this.#ringErrors[slot] = 0;
    this.#ringLatency.fill(0, slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS);
  }

  #recordError(ex: Exchange): void {
    const route = ex.route;
    const url = ex.req.url ?? '';
    if (this.#recentErrors.length === RECENT_ERRORS) this.#recentErrors.shift();
    this.#recentErrors.push({
      time: Date.now(),
      status: ex.status,
      method: ex.info.method,
      path: url.length > MAX_PATH ? `${url.slice(0, MAX_PATH)}…` : url,
      route: route?.name ?? null,
      upstream: route?.action.kind === 'forward' ? route.action.upstream.name : null,
      server: ex.server?.authority ?? null,
      code: ex.errorCode ?? null,
    });
  }

  #recordRefused(client: string, denied: boolean): void {
    let entry = this.#refused.get(client);
    if (entry === undefined) {
      if (this.#refused.size >= MAX_REFUSED_CLIENTS) return;
      entry = { client, denied: 0, limited: 0 };
      this.#refused.set(client, entry);
    }
    if (denied) entry.denied++;
    else entry.limited++;
  }

  #refusedClients(): RefusedClient[] {
    return topRefused([this.#refusedBefore.values(), this.#refused.values()]);
  }
}

/** The ten clients refused most, counts of the same client in several lists added up. */
export function topRefused(lists: Iterable<Iterable<RefusedClient>>): RefusedClient[] {
  const sum = new Map<string, RefusedClient>();
  for (const list of lists) {
    for (const { client, denied, limited } of list) {
      const entry = sum.get(client) ?? { client, denied: 0, limited: 0 };
      entry.denied += denied;
      entry.limited += limited;
      sum.set(client, entry);
    }
  }
  return [...sum.values()].sort((a, b) => b.denied + b.limited - (a.denied + a.limited)).slice(0, 10);
}

function epochSecond(): number {
  return Math.floor(Date.now() / 1000);
}
