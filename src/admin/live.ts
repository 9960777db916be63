/**
 * The dashboard's live feed, `GET /events`: server-sent events (WHATWG HTML §9.2), one JSON
 * snapshot a second, made once for every watcher from the status, the caches and the traffic
 * recorders (one, or each worker's, merged here). The timer runs only while someone watches.
 */
import type { ServerResponse } from 'node:http';
import { bucketUpperMs, LATENCY_BUCKETS, RECENT_ERRORS, TRAFFIC_SECONDS, topRefused, type RecentError, type TrafficWindow } from '../core/recent-traffic.ts';
import { errorMessage } from '../core/caught.ts';

/** What the feed reads from the running proxy (AdminTarget has all of it). */
export interface LiveSource {
  status(): unknown;
  caches(): { stats(): unknown };
  traffic(): TrafficWindow | Promise<TrafficWindow>;
}

/** Watchers at most: each costs a socket and a write a second. */
const MAX_WATCHERS = 64;
/** A watcher that reads slower than this much pending output is dropped rather than buffered for. */
const MAX_PENDING_BYTES = 1 << 20;
/** Seconds over which the current latency percentiles are taken. */
const LATENCY_WINDOW_S = 5;
const DAY_MS = 86_400_000;

export class LiveFeed {
  readonly #source: LiveSource;
  readonly #watchers = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #building = false;
  /** Cache hits and lookups at the previous snapshot, for the ratio over the last second. */
  #cacheBefore: { hits: number; lookups: number } | null = null;
  readonly #cacheRatios: (number | null)[] = [];

  constructor(source: LiveSource) {
    this.#source = source;
  }

  /** Takes `res` as a watcher: the event-stream head, a first snapshot at once, then one a second. */
  watch(res: ServerResponse): void {
    if (this.#watchers.size >= MAX_WATCHERS) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end('too many dashboard watchers\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // Reconnect after a second when the stream breaks (an EventSource does it by itself).
    res.write('retry: 1000\n\n');
    this.#watchers.add(res);
    res.on('close', () => {
      this.#watchers.delete(res);
      if (this.#watchers.size === 0) this.#stop();
    });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.#tick(), 1000);
      this.#timer.unref();
    }
    void this.#tick();
  }

  close(): void {
    this.#stop();
    for (const res of this.#watchers) res.destroy();
    this.#watchers.clear();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    // A slow status (many workers, a busy loop) skips a beat rather than piling snapshots up.
    if (this.#building) return;
    this.#building = true;
    try {
      const text = `data: ${JSON.stringify(await this.snapshot())}\n\n`;
      for (const res of this.#watchers) {
        if (res.writableLength > MAX_PENDING_BYTES) res.destroy();
        else res.write(text);
      }
    } catch (error: unknown) {
      const text = `event: feed-error\ndata: ${JSON.stringify({ error: errorMessage(error) })}\n\n`;
      for (const res of this.#watchers) res.write(text);
    } finally {
      this.#building = false;
    }
  }

  /** One snapshot of everything the dashboard shows. */
  async snapshot(): Promise<Record<string, unknown>> {
    const [status, caches, traffic] = await Promise.all([this.#source.status(), this.#source.caches().stats(), this.#source.traffic()]);
    const s = (status ?? {}) as StatusShape;
    return {
      time: new Date().toISOString(),
      uptime_s: s.uptime_s ?? 0,
      listeners: s.listeners ?? [],
      ...(s.workers !== undefined ? { workers: { configured: s.workers.configured, live: s.workers.live } } : {}),
      traffic: summarize(traffic),
      upstreams: Object.entries(s.upstreams ?? {}).map(([name, u]) => ({
        name,
        balance: u.balance,
        in_flight: u.in_flight,
        queued: u.queued,
        servers: (u.servers ?? []).map((server, index) => ({ index, ...server })),
      })),
      cache: this.#cache(caches),
      protection: pick(s.protection ?? {}, ['denied_requests', 'rate_limited', 'banned_requests', 'bans_active', 'denied_connections']),
      refused: traffic.refused,
      recent_errors: [...traffic.recentErrors].reverse(),
      certificates: (s.certificates ?? []).map((c) => ({ ...c, days_left: Math.floor((Date.parse(c.not_after) - Date.now()) / DAY_MS) })),
    };
  }

  #cache(stats: unknown): Record<string, unknown> {
    let hits = 0;
    let lookups = 0;
    const stores = Object.values((stats ?? {}) as Record<string, { hits?: number; stale_hits?: number; misses?: number }>);
    for (const store of stores) {
      const storeHits = (store.hits ?? 0) + (store.stale_hits ?? 0);
      hits += storeHits;
      lookups += storeHits + (store.misses ?? 0);
    }
    const before = this.#cacheBefore;
    const recentLookups = before === null ? 0 : lookups - before.lookups;
    const recent = recentLookups > 0 && before !== null ? (hits - before.hits) / recentLookups : null;
    this.#cacheBefore = { hits, lookups };
    this.#cacheRatios.push(recent);
    if (this.#cacheRatios.length > TRAFFIC_SECONDS) this.#cacheRatios.shift();
    return { stores: stores.length, hits, lookups, ratio: lookups > 0 ? hits / lookups : null, recent_ratio: recent, series: this.#cacheRatios };
  }
}

/** Several workers' windows as one: counts add up by epoch second; errors and refused clients are pooled. */
export function mergeWindows(windows: readonly TrafficWindow[]): TrafficWindow {
  // No worker answered (all restarting): an empty minute up to now.
  const end = windows.length === 0 ? Math.floor(Date.now() / 1000) - 1 : Math.max(...windows.map((w) => w.end));
  const requests = new Uint32Array(TRAFFIC_SECONDS);
  const errors = new Uint32Array(TRAFFIC_SECONDS);
  const latency = new Uint32Array(TRAFFIC_SECONDS * LATENCY_BUCKETS);
  const recentErrors: RecentError[] = [];
  for (const w of windows) {
    // A worker whose last roll was a second behind lines up by the second it counted.
    const shift = end - w.end;
    for (let i = shift; i < TRAFFIC_SECONDS; i++) {
      const from = i - shift;
      requests[from] = (requests[from] ?? 0) + (w.requests[i] ?? 0);
      errors[from] = (errors[from] ?? 0) + (w.errors[i] ?? 0);
    }
    for (let i = shift * LATENCY_BUCKETS; i < w.latency.length; i++) {
      const to = i - shift * LATENCY_BUCKETS;
      latency[to] = (latency[to] ?? 0) + (w.latency[i] ?? 0);
    }
    recentErrors.push(...w.recentErrors);
  }
  recentErrors.sort((a, b) => a.time - b.time);
  return { end, requests, errors, latency, recentErrors: recentErrors.slice(-RECENT_ERRORS), refused: topRefused(windows.map((w) => w.refused)) };
}

/** Per-second series for the graphs, and the figures of the last seconds. */
export function summarize(w: TrafficWindow): Record<string, unknown> {
  const p50: (number | null)[] = [];
  const p90: (number | null)[] = [];
  const p99: (number | null)[] = [];
  const errorRate: (number | null)[] = [];
  for (let i = 0; i < TRAFFIC_SECONDS; i++) {
    const counts = w.latency.subarray(i * LATENCY_BUCKETS, (i + 1) * LATENCY_BUCKETS);
    const [a, b, c] = percentiles(counts, [0.5, 0.9, 0.99]);
    p50.push(a ?? null);
    p90.push(b ?? null);
    p99.push(c ?? null);
    const n = w.requests[i] ?? 0;
    errorRate.push(n > 0 ? (w.errors[i] ?? 0) / n : null);
  }
  const last = TRAFFIC_SECONDS - 1;
  const recent = new Uint32Array(LATENCY_BUCKETS);
  let recentRequests = 0;
  let recentErrors = 0;
  for (let i = TRAFFIC_SECONDS - LATENCY_WINDOW_S; i < TRAFFIC_SECONDS; i++) {
    recentRequests += w.requests[i] ?? 0;
    recentErrors += w.errors[i] ?? 0;
    for (let b = 0; b < LATENCY_BUCKETS; b++) recent[b] = (recent[b] ?? 0) + (w.latency[i * LATENCY_BUCKETS + b] ?? 0);
  }
  const [n50, n90, n99] = percentiles(recent, [0.5, 0.9, 0.99]);
  return {
    end: w.end,
    rps: Array.from(w.requests),
    error_rate: errorRate,
    p50,
    p90,
    p99,
    now: {
      rps: w.requests[last] ?? 0,
      error_rate: recentRequests > 0 ? recentErrors / recentRequests : 0,
      p50: n50 ?? null,
      p90: n90 ?? null,
      p99: n99 ?? null,
      window_s: LATENCY_WINDOW_S,
    },
  };
}

/** The upper bound of the bucket each quantile falls in (ms, rounded), or undefined when nothing was counted. */
function percentiles(counts: Uint32Array, quantiles: readonly number[]): (number | undefined)[] {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return quantiles.map(() => undefined);
  return quantiles.map((q) => {
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (let b = 0; b < counts.length; b++) {
      seen += counts[b] ?? 0;
      if (seen >= rank) return Math.round(bucketUpperMs(b) * 100) / 100;
    }
    return undefined;
  });
}

function pick(from: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in from).map((k) => [k, from[k]]));
}

/** The parts of GET /status the feed reads. */
interface StatusShape {
  uptime_s?: number;
  listeners?: string[];
  workers?: { configured: number; live: number };
  upstreams?: Record<string, { balance?: string; in_flight?: number; queued?: number; servers?: Record<string, unknown>[] }>;
  protection?: Record<string, unknown>;
  certificates?: { listener: string; names: string[]; not_after: string }[];
}
