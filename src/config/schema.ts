/**
 * The configuration schema: the one source of config types. Every field has a default where a
 * sane one exists, so that the smallest useful file is a listener, an upstream and a route.
 */
import { z } from 'zod';
import { tracingSchema } from './tracing-schema.ts';
import { TOKEN, duration, headerName, nameSchema, size } from './units.ts';
import { ipRange, protectionSchema, rateLimitsSchema, routeAccessSchema } from './protection-schema.ts';
import { listenerSchema } from './listener-schema.ts';
import { stateDirSchema } from './tls-schema.ts';
import { cacheSchema, compressSchema, routeCacheSchema, routeCompressSchema } from './acceleration-schema.ts';
import { upstreamTlsSchema } from './upstream-tls-schema.ts';
import { adminSchema } from './admin-schema.ts';
import { gslbSchema } from './gslb-schema.ts';
import { stateSchema } from './state-schema.ts';

/** A regular expression, compiled here as the matchers will compile it; a bad one says why. */
const regex = z.string().superRefine((value, ctx) => {
  try {
    new RegExp(value);
  } catch (error: unknown) {
    // "Invalid regular expression: /(/: Unterminated group": the part after the pattern.
    const reason = error instanceof Error ? (/: ([^:]+)$/.exec(error.message)?.[1] ?? error.message) : String(error);
    ctx.addIssue({ code: 'custom', message: `is not a valid regular expression: ${reason}` });
  }
});

/** Header edits applied to a request or a response. */
const headerOps = z.strictObject({
  /** Set these headers, replacing any value already present. */
  set: z.record(headerName, z.string()).default({}),
  /** Add these headers, keeping values already present. */
  add: z.record(headerName, z.string()).default({}),
  /** Remove these headers. */
  remove: z.array(headerName).default([]),
});

const stringOrList = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

const valueMatch = z.union([z.string(), z.strictObject({ regex }), z.strictObject({ present: z.boolean() })]);

const match = z
  .strictObject({
    /** Host names: exact ("example.com") or a leading wildcard ("*.example.com"). */
    host: stringOrList.optional(),
    /** The exact path. */
    path: z.string().startsWith('/').optional(),
    /** A path prefix, matched on segment boundaries ("/api" matches "/api" and "/api/x", not "/apix"). */
    path_prefix: z.string().startsWith('/').optional(),
    /** A regular expression tested against the path. */
    path_regex: regex.optional(),
    /** Methods, upper case. */
    methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case method name')).min(1).optional(),
    /** Request headers: name → exact value, { regex } or { present }. */
    headers: z.record(headerName, valueMatch).optional(),
    /** Query parameters: name → exact value, { regex } or { present }. */
    query: z.record(z.string(), valueMatch).optional(),
  })
  .default({});

/** One route: what it matches, its middlewares and its action (exactly one of upstream, gslb, redirect, respond). */
export const routeSchema = z
  .strictObject({
    /** A name for logs; defaults to "route-N". */
    name: z.string().optional(),
    match,
    /** Forward to this upstream. */
    upstream: z.string().optional(),
    /** Send to the region a `gslb` block chooses for the client (proxy or redirect mode; docs/gslb.md). */
    gslb: z.string().optional(),
    /** Remove this prefix from the path before forwarding. */
    strip_prefix: z.string().startsWith('/').optional(),
    /** Rewrite the path with a regular expression before forwarding ($1... refer to groups). */
    rewrite: z.strictObject({ pattern: regex, replace: z.string() }).optional(),
    /** Answer with a redirect. */
    redirect: z
      .strictObject({
        to: z.string().min(1),
        status: z
          .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
            error: 'must be 301, 302, 303, 307 or 308',
          })
          .default(302),
        /** Append the request's query string to the target. */
        keep_query: z.boolean().default(true),
      })
      .optional(),
    /** Answer with a fixed response. */
    respond: z
      .strictObject({
        status: z.number().int().min(200).max(599),
        body: z.string().default(''),
        content_type: z.string().default('text/plain; charset=utf-8'),
      })
      .optional(),
    /** Edits to the request headers sent to the upstream. */
    request_headers: headerOps.optional(),
    /** Edits to the response headers sent to the client. */
    response_headers: headerOps.optional(),
    /** Client addresses allowed or denied on this route (403); see docs/security.md. */
    access: routeAccessSchema.optional(),
    /** Request rate limits (429); see docs/security.md. */
    rate_limits: rateLimitsSchema.optional(),
    /** HTTP cache for this route: true, false, or overrides of the global `cache` (docs/caching.md). */
    cache: routeCacheSchema.optional(),
    /** Response compression for this route: true, false, or overrides of the global `compress` (docs/compression.md). */
    compress: routeCompressSchema.optional(),
  })
  .superRefine((value, ctx) => {
    const actions = [value.upstream, value.gslb, value.redirect, value.respond].filter((a) => a !== undefined).length;
    if (actions !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a route needs exactly one action: upstream, gslb, redirect or respond' });
    }
  });

const server = z.strictObject({
  /** The backend's base URL, http://host:port, or https://host:port for TLS (see the upstream's `tls`). */
  url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL such as http://127.0.0.1:3000' }),
  /** Relative share of traffic. */
  weight: z.number().int().min(1).max(1000).default(1),
  /** Used only while every primary (non-backup) server is unavailable. */
  backup: z.boolean().default(false),
  /** Out of rotation: takes no new requests; those in flight finish. */
  drain: z.boolean().default(false),
  /** Most requests in flight on this server at once (a full server is skipped); 0 means no limit. */
  max_in_flight: z.number().int().nonnegative().default(0),
});

/** An HTTP status, or a range "200-399". Becomes [low, high]. */
const statusRange = z.union([z.number().int(), z.string()]).transform((value, ctx): [number, number] => {
  const text = String(value).trim();
  const dash = text.indexOf('-');
  const low = Number(dash === -1 ? text : text.slice(0, dash));
  const high = dash === -1 ? low : Number(text.slice(dash + 1));
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < 100 || high > 599 || low > high) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a status or a range such as 200 or "200-399"` });
    return z.NEVER;
  }
  return [low, high];
});

/** Active health checks: a request (or a TCP connection) to each server on an interval. */
const healthCheck = z
  .strictObject({
    /**
     * http: a request whose answer is checked; tcp: only that a connection opens; grpc: the
     * standard gRPC health check (grpc.health.v1.Health/Check), for upstreams with protocol h2 or h2c.
     */
    type: z.enum(['http', 'tcp', 'grpc']).default('http'),
    /** For type grpc: the service asked about; the server as a whole when absent. */
    service: z.string().optional(),
    /** Method of the check request. */
    method: z.string().regex(/^[A-Z]+$/, 'must be an upper-case method name').default('GET'),
    /** Path (and query) of the check request. */
    path: z.string().regex(/^\/[\x21-\x7e]*$/, 'must be a path starting with / (no spaces, ASCII)').default('/'),
    /** Host header of the check request; the server's host:port when absent. */
    host: z.string().regex(/^[\x21-\x7e]+$/, 'must be a host name (no spaces, ASCII)').optional(),
    /** Statuses that pass: numbers or ranges such as "200-399". */
    expect_status: z.array(statusRange).min(1).default([[200, 399]]),
    /** Text the response body must contain (the first 64 KiB are read). */
    expect_body: z.string().min(1).optional(),
    /** Time between two checks of one server. */
    interval: duration.default(5_000),
    /** Each interval varies by up to this fraction either way, so that checks do not come in waves. */
    jitter: z.number().min(0).max(1).default(0.1),
    /** A check that takes longer fails; 2 s, or the interval when that is shorter. */
    timeout: duration.optional(),
    /** Consecutive passes that bring a down server back up. */
    rise: z.number().int().min(1).max(100).default(2),
    /** Consecutive failures that take an up server down. */
    fall: z.number().int().min(1).max(100).default(3),
  })
  .superRefine((value, ctx) => {
    if (value.interval < 10) ctx.addIssue({ code: 'custom', path: ['interval'], message: 'must be at least 10ms' });
    if (value.timeout === undefined) return;
    if (value.timeout < 1) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be at least 1ms' });
    else if (value.timeout > value.interval) {
      ctx.addIssue({ code: 'custom', path: ['timeout'], message: `must not be longer than the interval (${value.interval} ms)` });
    }
  })
  .superRefine((value, ctx) => {
    if (value.type !== 'http' && value.expect_body !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['expect_body'], message: 'only applies to type: http' });
    }
    if (value.type !== 'grpc' && value.service !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['service'], message: 'only applies to type: grpc' });
    }
  })
  .transform((value) => ({ ...value, timeout: value.timeout ?? Math.min(2_000, value.interval) }));

/** Passive health checking (outlier detection, as Envoy's): failing servers are ejected for a while. */
const outlierDetection = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Connection failures, resets and timeouts in a row that eject a server; 0 turns this off. */
    consecutive_failures: z.number().int().nonnegative().default(3),
    /** 5xx responses (or failures) in a row that eject a server; 0 (the default) turns this off. */
    consecutive_5xx: z.number().int().nonnegative().default(0),
    /** How long the first ejection lasts; each further ejection lasts one more of these. */
    base_ejection_time: duration.default(30_000),
    /** The longest an ejection lasts. */
    max_ejection_time: duration.default(300_000),
    /** Most servers of the upstream ejected at once, as a share of them (at least one of two or more). */
    max_ejection_percent: z.number().min(0).max(100).default(50),
    /**
     * While ejected, the server is probed this often (its health check, or a TCP connect); when the
     * probe passes it is let back on trial before the ejection time is over. Doubles for each
     * ejection in a row; 0 turns the probe off (the ejection then lasts its full time).
     */
    recovery_probe_interval: duration.default(1_000),
  })
  .superRefine((value, ctx) => {
    if (value.max_ejection_time < value.base_ejection_time) {
      ctx.addIssue({ code: 'custom', path: ['max_ejection_time'], message: 'must not be shorter than base_ejection_time' });
    }
  });

const RETRY_CONDITION = 'must be connect_failure, reset, timeout or a 5xx status such as 503';
const retryCondition = z.union(
  [z.enum(['connect_failure', 'reset', 'timeout']), z.number().int(RETRY_CONDITION).min(500, RETRY_CONDITION).max(599, RETRY_CONDITION)],
  { error: RETRY_CONDITION },
);

const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'];

/** Trying another server when one fails. */
const retries = z.strictObject({
  /** Tries in all, the first included; 1 turns retries off. */
  attempts: z.number().int().min(1).max(10).default(3),
  /** What is retried: connect_failure (any method), reset, timeout and 5xx statuses (idempotent methods only). */
  retry_on: z.array(retryCondition).default(['connect_failure', 'reset']),
  /** Methods that may be sent twice (RFC 9110 §9.2.2). */
  idempotent_methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case method name')).default(IDEMPOTENT_METHODS),
  /** Time from the request's arrival after which no try starts, and one waiting for its response head is cut; 0 means none. */
  deadline: duration.default(0),
  /** Retries may add at most this share of requests, so that retries never multiply an outage. */
  budget: z
    .strictObject({
      /** Retries allowed per 100 requests, over the last 10 seconds. */
      percent: z.number().min(0).max(100).default(20),
      /** Retries always allowed per second, whatever the traffic (so that a quiet upstream can retry). */
      min_per_second: z.number().min(0).default(10),
    })
    .prefault({}),
});

/** Circuit breaking: bounds on the work sent to an upstream; past them, 503 at once. */
const circuitBreaker = z.strictObject({
  /** Most requests in flight to the upstream at once; 0 means no limit. */
  max_in_flight: z.number().int().nonnegative().default(0),
  /** Requests that may wait for an in-flight slot; past it, 503. */
  max_queued: z.number().int().nonnegative().default(0),
  /** Longest wait in the queue; past it, 503. */
  queue_timeout: duration.default(10_000),
});

/** Sticky sessions: a signed cookie that pins a client to the server that answered it. */
const sticky = z.strictObject({
  /** The cookie's name. */
  cookie: z.string().regex(TOKEN, 'is not a valid cookie name').default('gh_sticky'),
  /** Key that signs the cookie (16 characters or more); a random one per process when absent. */
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Cookie lifetime; a session cookie when absent. */
  max_age: duration.optional(),
  /** SameSite attribute. */
  same_site: z.enum(['Lax', 'Strict', 'None']).default('Lax'),
});

/** What `balance: hash` hashes. */
const hashKey = z
  .strictObject({
    /** client_ip, header, cookie, path, query (one parameter, or the whole query) or uri (path and query). */
    key: z.enum(['client_ip', 'header', 'cookie', 'path', 'query', 'uri']).default('client_ip'),
    /** The header, cookie or query parameter name. */
    name: z.string().min(1).optional(),
    /** Bounded loads: no server takes more than this factor times the average in-flight load (1.25 is usual); 0 means no bound. */
    load_factor: z.number().refine((v) => v === 0 || v >= 1, 'must be 0 (no bound) or at least 1').default(0),
  })
  .superRefine((value, ctx) => {
    if ((value.key === 'header' || value.key === 'cookie') && value.name === undefined) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: `key: ${value.key} needs a name` });
    }
  });

const upstream = z.strictObject({
  /** The backends. */
  servers: z.array(server).min(1, 'an upstream needs at least one server'),
  /** Balancing algorithm. */
  balance: z.enum(['round_robin', 'least_conn', 'p2c', 'hash', 'random', 'first']).default('round_robin'),
  /** For balance: hash, what is hashed. */
  hash: hashKey.optional(),
  /** A server that comes back gets a share of traffic that grows to its full weight over this time; 0 turns it off. */
  slow_start: duration.default(0),
  /** Active health checks; none when absent. */
  health_check: healthCheck.optional(),
  outlier_detection: outlierDetection.prefault({}),
  retries: retries.prefault({}),
  circuit_breaker: circuitBreaker.prefault({}),
  /** Sticky sessions; none when absent. */
  sticky: sticky.optional(),
  /** TLS to the https:// servers: trusted CA, SNI name, client certificate (docs/tls.md); certificates are verified without it too. */
  tls: upstreamTlsSchema.optional(),
  /**
   * The HTTP version spoken to the servers: http1 (HTTP/1.1, over TLS for https://), h2 (HTTP/2
   * over TLS, chosen by ALPN: https:// servers only) or h2c (HTTP/2 without TLS, prior knowledge:
   * http:// servers only). gRPC needs h2 or h2c.
   */
  protocol: z.enum(['http1', 'h2', 'h2c']).default('http1'),
  timeouts: z
    .strictObject({
      /** Time to open a TCP connection. */
      connect: duration.default(5_000),
      /** Time from sending the request to receiving the response headers, per try. */
      header: duration.default(60_000),
      /** Longest silence while the response body streams. */
      idle: duration.default(60_000),
    })
    .default({ connect: 5_000, header: 60_000, idle: 60_000 }),
  keepalive: z
    .strictObject({
      /** Most connections kept open per server. */
      connections: z.number().int().min(1).default(128),
      /** Idle time before a kept connection is closed. */
      idle_timeout: duration.default(30_000),
    })
    .default({ connections: 128, idle_timeout: 30_000 }),
}).superRefine((value, ctx) => {
  const seen = new Map<string, number>();
  // http1 speaks to either scheme; h2 needs TLS, h2c needs none.
  const wanted = value.protocol === 'h2' ? 'https:' : value.protocol === 'h2c' ? 'http:' : null;
  value.servers.forEach((s, i) => {
    // The URL's own check reports a bad one; refinements still run beside it.
    if (!URL.canParse(s.url)) return;
    const url = new URL(s.url);
    const first = seen.get(url.origin);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['servers', i, 'url'], message: `the same server as servers[${first}] (${url.origin})` });
    }
    seen.set(url.origin, i);
    if (wanted !== null && url.protocol !== wanted) {
      const message = value.protocol === 'h2' ? 'protocol: h2 needs https:// servers (HTTP/2 without TLS is h2c)' : 'protocol: h2c needs http:// servers (HTTP/2 over TLS is h2)';
      ctx.addIssue({ code: 'custom', path: ['servers', i, 'url'], message });
    }
  });
  if (value.tls !== undefined && !value.servers.some((s) => isHttpsUrl(s.url))) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'only applies to https:// servers, and this upstream has none' });
  }
  if (value.health_check?.type === 'grpc' && value.protocol === 'http1') {
    ctx.addIssue({ code: 'custom', path: ['health_check', 'type'], message: 'grpc checks need protocol: h2 or h2c (gRPC is HTTP/2)' });
  }
  if (value.hash !== undefined && value.balance !== 'hash') {
    ctx.addIssue({ code: 'custom', path: ['hash'], message: 'only applies to balance: hash' });
  }
  // An empty list has its own message.
  if (value.servers.length > 0 && value.servers.every((s) => s.backup)) {
    ctx.addIssue({ code: 'custom', path: ['servers'], message: 'at least one server must not be a backup' });
  }
});

const limits = z
  .strictObject({
    /** Largest request head (request line and headers); past it, 431. */
    max_header_size: size.default(16 * 1024),
    /** Largest request body; past it, 413. 0 means no limit. */
    max_body_size: size.default(100 * 1024 ** 2),
    /** Time to receive the request headers; past it, 408. */
    header_timeout: duration.default(10_000),
    /** Time to receive the whole request; past it, 408. 0 means no limit. */
    request_timeout: duration.default(300_000),
    /** Idle time on a keep-alive connection before it is closed. */
    keepalive_timeout: duration.default(5_000),
    /** Requests served on one connection before it is closed. 0 means no limit. */
    max_requests_per_connection: z.number().int().nonnegative().default(1000),
    /** Most header lines in a request; past it, 431. */
    max_header_count: z.number().int().min(1).max(10_000).default(100),
    /** Longest request target (path and query); past it, 414. */
    max_url_length: size.default(8 * 1024),
    /** Slowest accepted request body, bytes per second (after the grace period); slower is cut. 0 means no minimum. */
    body_min_rate: size.default(256),
    /** Time a request body may take before body_min_rate applies. */
    body_min_rate_grace: duration.default(10_000),
  })
  .prefault({});

const forwarded = z
  .strictObject({
    /** Add X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host. */
    x_forwarded: z.boolean().default(true),
    /** Add the RFC 7239 Forwarded header. */
    forwarded: z.boolean().default(false),
    /** The Via header of RFC 9110 §7.6.3: this proxy's name in the chain, never a backend's. */
    via: z
      .strictObject({
        /** Add Via to requests sent to servers. */
        request: z.boolean().default(true),
        /** Add Via to responses sent to clients. */
        response: z.boolean().default(false),
        /** The name Gatehouse gives itself in Via. */
        pseudonym: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be a token (letters, digits and !#$%&\'*+-.^_`|~)').default('gatehouse'),
      })
      .prefault({}),
  })
  .prefault({});

const hideBackend = z
  .strictObject({
    /** Response headers removed because they reveal backend software. */
    remove_response_headers: z.array(headerName).default(['server', 'x-powered-by']),
    /** Rewrite Location and Content-Location that point at a backend to the public host. */
    rewrite_location: z.boolean().default(true),
    /** Rewrite Set-Cookie Domain attributes that name a backend to the public host. */
    rewrite_cookie_domain: z.boolean().default(true),
  })
  .default({ remove_response_headers: ['server', 'x-powered-by'], rewrite_location: true, rewrite_cookie_domain: true });

const accessLog = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** json: one JSON object per line; combined: the Apache/nginx combined format; extended: combined plus host, route and timings. Lines are ASCII. */
    format: z.enum(['json', 'combined', 'extended']).default('json'),
    /** "stdout" or a file path. */
    path: z.string().default('stdout'),
  })
  .default({ enabled: true, format: 'json', path: 'stdout' });

export const configSchema = z.strictObject({
  /** Addresses to accept client connections on. */
  listen: z.array(listenerSchema).min(1, 'at least one listener is needed'),
  /** The admin listener (JSON API: status, config changes, explain; docs/admin-api.md); keep it on loopback. */
  admin: adminSchema.optional(),
  /** Peers whose X-Forwarded-For is trusted (CIDR ranges). */
  trusted_proxies: z.array(ipRange).default([]),
  forwarded,
  hide_backend: hideBackend,
  limits,
  /** Access rules, connection limits, bans and path normalisation; see docs/security.md. */
  protection: protectionSchema,
  access_log: accessLog,
  /** Trace context, request ids and OTLP span export; see docs/operations.md#tracing. */
  tracing: tracingSchema,
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  /** Where Gatehouse keeps its local CA and ACME certificates (owner-only); see docs/tls.md. */
  state_dir: stateDirSchema,
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  shutdown_timeout: duration.default(30_000),
  /**
   * Worker threads serving requests: a number, or `auto` for the CPUs the process may use
   * (affinity mask and cgroup quota). 1 (the default) serves in the main thread. Read at start.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
  upstreams: z.record(nameSchema('upstream'), upstream).default({}),
  routes: z.array(routeSchema).default([]),
  /** Global server load balancing: regions chosen by the client's location (docs/gslb.md). */
  gslb: gslbSchema,
  /** The HTTP cache: stores and default policy; off unless enabled here or on a route (docs/caching.md). */
  cache: cacheSchema,
  /** Response compression defaults; off unless enabled here or on a route (docs/compression.md). */
  compress: compressSchema,
  /** Where state shared by several instances lives (Redis); absent: in memory (docs/scaling.md). */
  state: stateSchema,
});

/** A configuration as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated configuration with every default filled in. */
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];

/** A route's name in logs, metrics and reload diffs: its own, or "route-N" after its place in the list. */
export function routeName(route: RouteConfig, index: number): string {
  return route.name ?? `route-${index}`;
}
export type UpstreamConfig = Config['upstreams'][string];
export type HeaderOpsConfig = NonNullable<RouteConfig['request_headers']>;
export type ValueMatchConfig = z.output<typeof valueMatch>;
export type ServerConfig = UpstreamConfig['servers'][number];
export type HealthCheckConfig = NonNullable<UpstreamConfig['health_check']>;
export type ListenConfig = Config['listen'][number];
export type ProtectionConfig = Config['protection'];
export type RateLimitConfig = NonNullable<RouteConfig['rate_limits']>[number];

/** A server URL reached over TLS: its scheme is https, in any case (URL parsing lowercases it, as z.url accepts it). */
export function isHttpsUrl(url: string): boolean {
  return /^https:/i.test(url);
}
