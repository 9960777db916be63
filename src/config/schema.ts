/**
 * The configuration schema: the one source of config types. Every field has a default where a
 * sane one exists, so that the smallest useful file is a listener, an upstream and a route.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { address, duration, size } from './units.ts';

const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'is not a valid header name');

const cidr = z.string().refine(
  (value) => {
    const [ip, bits, ...rest] = value.split('/');
    if (rest.length > 0 || ip === undefined) return false;
    const max = isIPv4(ip) ? 32 : isIPv6(ip) ? 128 : 0;
    if (max === 0) return false;
    return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max);
  },
  { message: 'must be an IP address or CIDR range such as 10.0.0.0/8 or fd00::/8' },
);

const regex = z.string().refine(
  (value) => {
    try {
      new RegExp(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'is not a valid regular expression' },
);

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

const route = z
  .strictObject({
    /** A name for logs; defaults to "route-N". */
    name: z.string().optional(),
    match,
    /** Forward to this upstream. */
    upstream: z.string().optional(),
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
  })
  .superRefine((value, ctx) => {
    const actions = [value.upstream, value.redirect, value.respond].filter((a) => a !== undefined).length;
    if (actions !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a route needs exactly one action: upstream, redirect or respond' });
    }
  });

const server = z.strictObject({
  /** The backend's base URL, http://host:port. */
  url: z.url({ protocol: /^http$/, error: 'must be an http:// URL such as http://127.0.0.1:3000' }),
  /** Relative share of traffic. */
  weight: z.number().int().min(1).max(1000).default(1),
});

const upstream = z.strictObject({
  /** The backends. */
  servers: z.array(server).min(1, 'an upstream needs at least one server'),
  /** Balancing algorithm. */
  balance: z.literal('round_robin').default('round_robin'),
  timeouts: z
    .strictObject({
      /** Time to open a TCP connection. */
      connect: duration.default(5_000),
      /** Time from sending the request to receiving the response headers. */
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
  })
  .default({
    max_header_size: 16 * 1024,
    max_body_size: 100 * 1024 ** 2,
    header_timeout: 10_000,
    request_timeout: 300_000,
    keepalive_timeout: 5_000,
    max_requests_per_connection: 1000,
  });

const forwarded = z
  .strictObject({
    /** Add X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host. */
    x_forwarded: z.boolean().default(true),
    /** Add the RFC 7239 Forwarded header. */
    forwarded: z.boolean().default(false),
  })
  .default({ x_forwarded: true, forwarded: false });

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
    /** json: one pino JSON line per request; combined: the Apache/nginx combined format. */
    format: z.enum(['json', 'combined']).default('json'),
    /** "stdout" or a file path. */
    path: z.string().default('stdout'),
  })
  .default({ enabled: true, format: 'json', path: 'stdout' });

export const configSchema = z.strictObject({
  /** Addresses to accept client connections on. */
  listen: z.array(z.strictObject({ address })).min(1, 'at least one listener is needed'),
  /** The admin listener (status JSON); keep it on loopback. */
  admin: z.strictObject({ address }).optional(),
  /** Peers whose X-Forwarded-For is trusted (CIDR ranges). */
  trusted_proxies: z.array(cidr).default([]),
  forwarded,
  hide_backend: hideBackend,
  limits,
  access_log: accessLog,
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  shutdown_timeout: duration.default(30_000),
  upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'upstream names use letters, digits, _ . -'), upstream).default({}),
  routes: z.array(route).default([]),
});

/** A configuration as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated configuration with every default filled in. */
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type UpstreamConfig = Config['upstreams'][string];
export type HeaderOpsConfig = NonNullable<RouteConfig['request_headers']>;
export type ValueMatchConfig = z.output<typeof valueMatch>;
