// Load scenarios: which tool, path, how many connections, which request headers, compared with whom.
import type { ProxyName, ScenarioName } from './options.ts';
import { CACHE_BYTES, CACHE_PATH, GZIP_BYTES, GZIP_PATH, LARGE_BYTES, LARGE_PATH, MEDIUM_BYTES, MEDIUM_PATH, SMALL_BYTES, SMALL_PATH } from './payloads.ts';

/**
 * How a scenario is measured: wrk (HTTP/1.1, plain or TLS), h2load (HTTP/2 over TLS), or idle TLS
 * connections held open while the proxy's memory is read.
 */
export type ScenarioKind = 'wrk' | 'h2load' | 'idle-memory';

export interface Scenario {
  name: ScenarioName;
  label: string;
  kind: ScenarioKind;
  /** The proxies it runs on listen with this scheme. */
  scheme: 'http' | 'https';
  /**
   * true: the load tool runs on the load core (the proxy on the proxy core). false (multicore):
   * nothing is pinned, and the CPU columns are the two cores' busy %, not proxy and load.
   */
  pinned: boolean;
  path: string;
  /** Body bytes once decoded. */
  bodyBytes: number;
  threads: number;
  /** Load connections; for idle-memory, the idle connections held open. */
  connections: number;
  /** h2load: concurrent streams per connection (-m); 1 otherwise. */
  streams: number;
  /** Request headers the load tool sends ("Name: value"). */
  headers: readonly string[];
  /** The Content-Encoding every answer must have (checked before the run), or null for none. */
  encoding: 'gzip' | null;
  /** Every request on a new connection, and every handshake a full one (checked before the run). */
  fullHandshakes: boolean;
  /** The proxies the "vs nginx" and "vs gatehouse" columns divide by. */
  references: { nginx: ProxyName; gatehouse: ProxyName };
  /** Also divide by Gatehouse's figure in this plain-HTTP scenario of the same run (a column and a summary line). */
  httpBaseline: ScenarioName | null;
}

const PLAIN = {
  kind: 'wrk',
  scheme: 'http',
  pinned: true,
  threads: 1,
  streams: 1,
  headers: [],
  encoding: null,
  fullHandshakes: false,
  references: { nginx: 'nginx', gatehouse: 'gatehouse' },
  httpBaseline: null,
} as const;

const TLS = { ...PLAIN, scheme: 'https', references: { nginx: 'nginx-tls', gatehouse: 'gatehouse-tls' } } as const;

/** Idle TLS connections opened for the tls-idle-memory scenario. */
export const IDLE_CONNECTIONS = 2000;

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  small: { ...PLAIN, name: 'small', label: 'small (100 B)', path: SMALL_PATH, bodyBytes: SMALL_BYTES, connections: 50 },
  // Issue 21's middle size, where the tail latency was worst: read its p99 column too.
  medium: { ...PLAIN, name: 'medium', label: 'medium (10 KiB)', path: MEDIUM_PATH, bodyBytes: MEDIUM_BYTES, connections: 50 },
  large: { ...PLAIN, name: 'large', label: 'large (1 MiB)', path: LARGE_PATH, bodyBytes: LARGE_BYTES, connections: 10 },
  // Every request after the first is a cache hit: what a cache costs per answer, the backend idle.
  'cache-hit': { ...PLAIN, name: 'cache-hit', label: 'cache hit (100 B, max-age=3600)', path: CACHE_PATH, bodyBytes: CACHE_BYTES, connections: 50 },
  // Uncacheable (no-store) 16 KiB page, compressed on every request at gzip level 5.
  gzip: {
    ...PLAIN,
    name: 'gzip',
    label: 'gzip (16 KiB text/html, no-store)',
    path: GZIP_PATH,
    bodyBytes: GZIP_BYTES,
    connections: 50,
    headers: ['Accept-Encoding: gzip'],
    encoding: 'gzip',
  },
  // The small scenario over HTTPS keep-alive: what TLS costs per request once connected.
  'https-small': {
    ...TLS,
    name: 'https-small',
    label: 'https-small (100 B over HTTPS keep-alive)',
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    connections: 50,
    httpBaseline: 'small',
  },
  // HTTP/2 by ALPN, 50 connections with 10 streams each.
  h2: {
    ...TLS,
    name: 'h2',
    kind: 'h2load',
    label: 'h2 (100 B over HTTP/2, TLS)',
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    connections: 50,
    streams: 10,
    httpBaseline: 'small',
  },
  // One request per connection: every request pays a full TLS 1.3 handshake (ECDSA P-256).
  handshake: {
    ...TLS,
    name: 'handshake',
    label: 'handshake (new TLS 1.3 connection per request, ECDSA P-256)',
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    connections: 50,
    headers: ['Connection: close'],
    fullHandshakes: true,
  },
  // The whole 2-core machine, nothing pinned: proxy (1 or 2 workers), nginx backend and wrk share
  // both cores as a user would run them. Two wrk threads (one per core) and 100 connections, so that
  // each proxy worker has about 50 as in small.
  multicore: {
    ...PLAIN,
    name: 'multicore',
    label: 'multicore (100 B, 2 cores, nothing pinned, nginx backend)',
    pinned: false,
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    threads: 2,
    connections: 100,
    references: { nginx: 'nginx-2w', gatehouse: 'gatehouse-1w' },
  },
  // The small scenario through a per-client rate limit that never refuses: in memory, or in Redis
  // (state.redis). Issue 20: Redis-backed limits cost < 10% throughput against in-memory ones.
  limits: {
    ...PLAIN,
    name: 'limits',
    label: 'limits (100 B, a never-refusing per-client rate limit: memory vs Redis)',
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    connections: 50,
    references: { nginx: 'nginx', gatehouse: 'gatehouse-limits' },
  },
  // Idle TLS connections, each after a handshake and one request: the proxy's memory per connection.
  'tls-idle-memory': {
    ...TLS,
    name: 'tls-idle-memory',
    kind: 'idle-memory',
    label: `tls-idle-memory (${IDLE_CONNECTIONS} idle TLS connections, HTTP/1.1, one request each)`,
    path: SMALL_PATH,
    bodyBytes: SMALL_BYTES,
    connections: IDLE_CONNECTIONS,
  },
};

/** The plain-HTTP scenarios: the caching, compressing peers run them all. */
export const HTTP_SCENARIOS: readonly ScenarioName[] = ['small', 'medium', 'large', 'cache-hit', 'gzip'];

/** The plain forwarding scenarios, which every plain-HTTP proxy runs; the others need a cache or compression. */
export const PLAIN_SCENARIOS: readonly ScenarioName[] = ['small', 'medium', 'large'];

/** The TLS scenarios, run by the TLS peers (gatehouse-tls, nginx-tls) only. */
export const TLS_SCENARIOS: readonly ScenarioName[] = ['https-small', 'h2', 'handshake', 'tls-idle-memory'];

/** The multicore peers (gatehouse-1w, gatehouse-2w, …) run this scenario only, and no other peer runs it. */
export const MULTICORE_SCENARIOS: readonly ScenarioName[] = ['multicore'];

/** gzip level every proxy is configured with in the gzip scenario. */
export const GZIP_LEVEL = 5;

/** Warm-up load before each measured run (results discarded). */
export const WARMUP_SECONDS = 2;
