/**
 * Gatehouse's metric families, read at scrape time from the running snapshot and the state kept
 * across reloads. Labels are bounded by the configuration: route, upstream, server (its configured
 * host:port), status class, listener address, protocol; never a client address or a path.
 */
import { formatAddress } from '../../config/units.ts';
import type { Snapshot } from '../../core/snapshot.ts';
import { STATUS_CLASSES, type Traffic } from '../../core/metrics/traffic.ts';
import type { Listener } from '../../listeners/listener.ts';
import type { ServerState } from '../../upstream/server-state.ts';
import type { Upstream } from '../../upstream/upstream.ts';
import { compressionCounters } from '../../middleware/compress/streams.ts';
import { Family, histogramSamples, type Sample } from './family.ts';

/** Reloads and how they ended, counted by whoever runs them (a Gatehouse, or the primary of several). */
export class ReloadCounts {
  succeeded = 0;
  failed = 0;
  /** Epoch ms of the last successful reload; the start until there is one. */
  lastSuccessMs = Date.now();

  /** Runs a reload and counts how it ended; its failure is passed on. */
  async count(reload: Promise<void>): Promise<void> {
    try {
      await reload;
    } catch (error: unknown) {
      this.failed++;
      throw error;
    }
    this.succeeded++;
    this.lastSuccessMs = Date.now();
  }
}

/** What the families read from one Gatehouse. */
export interface MetricsSource {
  snapshot(): Snapshot;
  /** Requests that matched no route. */
  readonly unrouted: Traffic;
  listeners(): readonly Listener[];
  /** The TLS listeners' certificates: first name and expiry. */
  certificates(): readonly { listener: Listener; name: string; notAfter: Date }[];
}

interface RouteRow {
  readonly labels: Record<string, string>;
  readonly traffic: Traffic;
}

interface ServerRow extends RouteRow {
  readonly state: ServerState;
}

function routeRows(source: MetricsSource): RouteRow[] {
  const rows: RouteRow[] = [{ labels: { route: '', upstream: '' }, traffic: source.unrouted }];
  const seen = new Set<Traffic>();
  for (const route of source.snapshot().router.routes) {
    // Routes with the same name and upstream share their Traffic: one series.
    if (seen.has(route.traffic)) continue;
    seen.add(route.traffic);
    const upstream = route.action.kind === 'forward' ? route.action.upstream.name : '';
    rows.push({ labels: { route: route.name, upstream }, traffic: route.traffic });
  }
  return rows;
}

function serverRows(source: MetricsSource): ServerRow[] {
  const rows: ServerRow[] = [];
  const seen = new Set<string>();
  for (const upstream of source.snapshot().upstreams.values()) {
    for (const server of upstream.servers) {
      // One series per label set, even for a server listed twice or under two schemes.
      const key = `${upstream.name}\n${server.authority}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push({ labels: { upstream: upstream.name, server: server.authority }, traffic: server.state.traffic, state: server.state });
    }
  }
  return rows;
}

function byClass(out: Sample[], rows: readonly RouteRow[]): void {
  for (const row of rows) {
    for (let c = 0; c < STATUS_CLASSES.length; c++) {
      const value = row.traffic.requests[c] as number;
      if (value > 0) out.push({ labels: { ...row.labels, code: STATUS_CLASSES[c] as string }, value });
    }
  }
}

/** A latency histogram family, one series per row. */
function latencyFamily(name: string, help: string, rows: () => readonly RouteRow[]): Family {
  return new Family(name, 'histogram', help, (out) => {
    for (const row of rows()) histogramSamples(out, name, row.labels, row.traffic.latency);
  });
}

/** A counter family, one sample per row. */
function rowCounter<R extends RouteRow>(name: string, help: string, rows: () => readonly R[], value: (row: R) => number): Family {
  return new Family(name, 'counter', help, (out) => {
    for (const row of rows()) out.push({ labels: row.labels, value: value(row) });
  });
}

/** A family of one sample per upstream of the running snapshot. */
function upstreamFamily(source: MetricsSource, name: string, type: 'counter' | 'gauge', help: string, value: (upstream: Upstream) => number): Family {
  return new Family(name, type, help, (out) => {
    for (const upstream of source.snapshot().upstreams.values()) out.push({ labels: { upstream: upstream.name }, value: value(upstream) });
  }, 'sum');
}

const SERVER_STATES = ['up', 'down', 'ejected', 'draining'] as const;

/** The request path's families (each worker thread's, merged by the primary). */
export function requestFamilies(source: MetricsSource): Family[] {
  return [
    new Family('gatehouse_requests_total', 'counter', 'Requests answered, by route, upstream and status class (code="none": no answer was sent).', (out) => byClass(out, routeRows(source))),
    latencyFamily('gatehouse_request_duration_seconds', 'Whole request time, from the request head to the last byte of the answer.', () => routeRows(source)),
    rowCounter('gatehouse_request_body_bytes_total', 'Request body bytes received.', () => routeRows(source), (row) => row.traffic.bytesIn),
    rowCounter('gatehouse_response_body_bytes_total', 'Response body bytes sent to clients.', () => routeRows(source), (row) => row.traffic.bytesOut),
    new Family('gatehouse_upstream_requests_total', 'counter', 'Requests answered by a server (the last try), by upstream, server and status class.', (out) => byClass(out, serverRows(source))),
    latencyFamily('gatehouse_upstream_response_seconds', 'Time until the server\'s response headers arrived (the upstream part of a request, retries included).', () => serverRows(source)),
    rowCounter('gatehouse_upstream_response_body_bytes_total', 'Response body bytes sent to clients from each server.', () => serverRows(source), (row) => row.traffic.bytesOut),
    rowCounter('gatehouse_upstream_failures_total', 'Tries that failed at a server (connection, timeout, reset).', () => serverRows(source), (row) => row.state.failures),
    new Family('gatehouse_server_state', 'gauge', 'A server\'s state: 1 for the one it is in (up, down, ejected, draining).', (out) => {
      for (const row of serverRows(source)) {
        const now = row.state.status;
        for (const state of SERVER_STATES) out.push({ labels: { ...row.labels, state }, value: now === state ? 1 : 0 });
      }
    }),
    rowCounter('gatehouse_server_ejections_total', 'Times a server was ejected by outlier detection (passive health).', () => serverRows(source), (row) => row.state.ejectionsTotal),
    new Family('gatehouse_server_in_flight', 'gauge', 'Requests being forwarded to a server now.', (out) => {
      for (const row of serverRows(source)) out.push({ labels: row.labels, value: row.state.inFlight });
    }, 'sum'),
    upstreamFamily(source, 'gatehouse_upstream_retries_total', 'counter', 'Retries (tries after the first) sent to an upstream.', (upstream) => upstream.state.budget.retries),
    upstreamFamily(source, 'gatehouse_upstream_circuit_open_total', 'counter', 'Requests refused because the upstream\'s max_in_flight and queue were full (circuit breaker open).', (upstream) => upstream.state.rejected),
    upstreamFamily(source, 'gatehouse_upstream_queued', 'gauge', 'Requests waiting in an upstream\'s queue (circuit breaker).', (upstream) => upstream.state.queued),
    new Family('gatehouse_open_connections', 'gauge', 'Client connections open now, by listener and protocol.', async (out) => {
      for (const listener of source.listeners()) {
        const total = await connectionsOf(listener);
        const h2 = listener.http2.sessions.size;
        out.push({ labels: { listener: listenerLabel(listener), protocol: 'http/1.1' }, value: Math.max(0, total - h2) });
        out.push({ labels: { listener: listenerLabel(listener), protocol: 'h2' }, value: h2 });
      }
    }, 'sum'),
    new Family('gatehouse_connection_bytes_total', 'counter', 'Bytes received (direction="in") and sent ("out") on client connections, on the wire (headers and TLS included), counted when a connection closes.', (out) => {
      for (const listener of source.listeners()) {
        out.push({ labels: { listener: listenerLabel(listener), direction: 'in' }, value: listener.byteCounters.in });
        out.push({ labels: { listener: listenerLabel(listener), direction: 'out' }, value: listener.byteCounters.out });
      }
    }),
    new Family('gatehouse_tls_handshakes_total', 'counter', 'TLS handshakes on a listener, by result.', (out) => {
      for (const listener of source.listeners()) {
        if (!listener.tls) continue;
        out.push({ labels: { listener: listenerLabel(listener), result: 'ok' }, value: listener.tlsCounters.handshakes });
        out.push({ labels: { listener: listenerLabel(listener), result: 'failed' }, value: listener.tlsCounters.failures });
      }
    }),
    new Family('gatehouse_tls_certificate_expiry_timestamp_seconds', 'gauge', 'When each certificate a TLS listener serves expires (Unix seconds), by listener and its first name.', (out) => {
      for (const cert of source.certificates()) out.push({ labels: { listener: listenerLabel(cert.listener), name: cert.name }, value: Math.floor(cert.notAfter.getTime() / 1000) });
    }, 'min'),
    new Family('gatehouse_cache_requests_total', 'counter', 'Cache look-ups by result: hit, stale (served stale), miss, collapsed (misses that waited for another request\'s fill, also counted as miss), bypass.', (out) => {
      for (const [cache, stats] of cacheStats(source)) {
        for (const [result, key] of CACHE_RESULTS) out.push({ labels: { cache, result }, value: stats[key] ?? 0 });
      }
    }),
    new Family('gatehouse_cache_stored_bytes', 'gauge', 'Bytes of responses held by a cache store.', (out) => {
      for (const [cache, stats] of cacheStats(source)) out.push({ labels: { cache }, value: stats['bytes'] ?? 0 });
    }, 'sum'),
    new Family('gatehouse_cache_entries', 'gauge', 'Responses held by a cache store.', (out) => {
      for (const [cache, stats] of cacheStats(source)) out.push({ labels: { cache }, value: stats['entries'] ?? 0 });
    }, 'sum'),
    new Family('gatehouse_protection_events_total', 'counter', 'Requests and connections refused or slowed by protection: denied, rate_limited, banned and the rest, by event.', (out) => {
      const counters = source.snapshot().protection.state.counters as unknown as Record<string, number>;
      for (const event in counters) out.push({ labels: { event }, value: counters[event] as number });
    }),
    new Family('gatehouse_compression_bytes_total', 'counter', 'Bytes into and out of response compression (stage="in"/"out"): the ratio is out / in.', (out) => {
      const c = compressionCounters;
      out.push({ labels: { stage: 'in' }, value: c.bytesIn });
      out.push({ labels: { stage: 'out' }, value: c.bytesOut });
    }),
  ];
}

/** Reloads, counted where they are run. */
export function reloadFamilies(reloads: ReloadCounts): Family[] {
  return [
    new Family('gatehouse_reloads_total', 'counter', 'Configuration reloads, by result (ok, failed).', (out) => {
      out.push({ labels: { result: 'ok' }, value: reloads.succeeded });
      out.push({ labels: { result: 'failed' }, value: reloads.failed });
    }),
    new Family('gatehouse_config_last_reload_success_timestamp_seconds', 'gauge', 'When the running configuration was loaded (start or last successful reload), Unix seconds.', (out) => {
      out.push({ labels: {}, value: Math.round(reloads.lastSuccessMs / 1000) });
    }),
  ];
}

const CACHE_RESULTS: readonly (readonly [string, string])[] = [
  ['hit', 'hits'],
  ['stale', 'stale_hits'],
  ['miss', 'misses'],
  ['collapsed', 'collapsed'],
  ['bypass', 'bypassed'],
  ['stale_on_error', 'stale_on_error'],
];

function cacheStats(source: MetricsSource): [string, Record<string, number>][] {
  return Object.entries(source.snapshot().caches.stats()) as [string, Record<string, number>][];
}

/** The address a listener is bound to (its configured one names port 0 when the port was picked). */
function listenerLabel(listener: Listener): string {
  const bound = listener.server.address();
  return bound === null || typeof bound === 'string' ? listener.address : formatAddress(bound);
}

function connectionsOf(listener: Listener): Promise<number> {
  return new Promise((resolve) => listener.server.getConnections((error, count) => resolve(error ? 0 : count)));
}
