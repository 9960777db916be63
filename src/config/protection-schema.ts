/**
 * The configuration of protection: access rules, connection and rate limits, bans and path
 * normalisation. Imported by schema.ts, which stays the one source of config types.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { IpSet, parseRange } from '../middleware/ip-filter/ip-set.ts';
import { duration, nameSchema } from './units.ts';
import { errorMessage } from '../core/caught.ts';

/** An IP address or CIDR range, parsed by the same code that builds the lookup sets. */
export const ipRange = z.string().refine((value) => parseRange(value) !== null, {
  message: 'must be an IP address or CIDR range such as 192.0.2.7, 10.0.0.0/8 or 2001:db8::/32',
});

/** A list file: read here too, so that `gatehouse validate` reports a bad line (file:line). */
const listFile = z
  .string()
  .min(1)
  .superRefine((path, ctx) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error: unknown) {
      ctx.addIssue({ code: 'custom', message: `cannot read the IP list: ${errorMessage(error)}` });
      return;
    }
    try {
      IpSet.fromText(text, path);
    } catch (error: unknown) {
      ctx.addIssue({ code: 'custom', message: errorMessage(error) });
    }
  });

const accessFields = {
  /** Addresses and CIDR ranges let in; when any is given, everyone else is refused. */
  allow: z.array(ipRange).default([]),
  /** Addresses and CIDR ranges refused; a deny entry wins over an allow entry. */
  deny: z.array(ipRange).default([]),
  /** A file of allowed ranges, one per line ("#" comments), re-read when it changes. */
  allow_file: listFile.optional(),
  /** A file of denied ranges, one per line ("#" comments), re-read when it changes. */
  deny_file: listFile.optional(),
};

/** A route's access rules: a refused request is answered 403. */
export const routeAccessSchema = z.strictObject(accessFields);

const globalAccess = z
  .strictObject({
    ...accessFields,
    /** What a refused client gets: its connection closed at accept, or 403 answers (then closed). */
    on_deny: z.union([z.literal('close'), z.literal(403)], { error: 'must be close or 403' }).default('close'),
  })
  .prefault({});

const RATE_UNITS: Record<string, number> = { s: 1000, sec: 1000, second: 1000, m: 60_000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000 };

/** "10/s", "600/m", "5000/h" or "N/<duration>" ("5/10s"); becomes milliseconds between two requests. */
export const rate = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\S+)\s*$/.exec(String(value));
  let count = 0;
  let period: number | undefined;
  if (match !== null) {
    count = Number(match[1]);
    const unit = (match[2] as string).toLowerCase();
    period = RATE_UNITS[unit];
    if (period === undefined) {
      const parsed = duration.safeParse(unit);
      period = parsed.success && parsed.data > 0 ? parsed.data : undefined;
    }
  }
  if (period === undefined || !(count > 0)) {
    ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a rate (use e.g. 10/s, 600/m, 5000/h or 5/10s)` });
    return z.NEVER;
  }
  return period / count;
});

const keyPart = z.union([
  z.literal('ip'),
  z.literal('route'),
  z.string().regex(/^header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be ip, route or header:<name>'),
]);

const rateLimit = z.strictObject({
  /** The limit's name in RateLimit headers and, with the route's name, the key its state is kept by. */
  name: nameSchema('limit').optional(),
  /** What is counted separately: the client address, the route, a request header, or a combination. */
  key: z.array(keyPart).min(1).default(['ip']),
  /** The sustained rate. */
  rate,
  /** Requests allowed at once above the rate. */
  burst: z.number().int().nonnegative().default(0),
  /**
   * How many of the burst requests pass at once; later ones are delayed so that they arrive at the
   * rate (nginx's `delay=`). Absent: none is delayed (nginx's `nodelay`).
   */
  delay_after: z.number().int().nonnegative().optional(),
  /** Also send RateLimit and RateLimit-Policy on answers that were allowed (not only on 429). */
  response_headers: z.boolean().default(false),
});

/** A route's rate limits; every one must allow a request. */
export const rateLimitsSchema = z.array(rateLimit).superRefine((limits, ctx) => {
  const seen = new Set<string>();
  limits.forEach((limit, i) => {
    const name = limit.name ?? `limit-${i}`;
    if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate limit name "${name}"` });
    seen.add(name);
  });
});

const bans = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Broken limits (429s, refused connections) within `window` that start a ban. */
    threshold: z.number().int().min(1).default(10),
    window: duration.default(60_000),
    /** The first ban's length. */
    duration: duration.default(60_000),
    /** Each further ban lasts this many times the previous one. */
    factor: z.number().min(1).default(2),
    max_duration: duration.default(86_400_000),
    /** A client not banned for this long starts again from `duration`. */
    forget_after: duration.default(86_400_000),
  })
  .prefault({});

const paths = z
  .strictObject({
    /** Collapse "//" into "/" (for matching and forwarding alike). */
    merge_slashes: z.boolean().default(true),
    /** "%2F" in a path: reject (400), decode (a separator) or keep (data, not a separator). */
    encoded_slashes: z.enum(['reject', 'decode', 'keep']).default('reject'),
    /** "\" or "%5C" in a path (some servers read it as "/"): reject (400) or keep. */
    backslashes: z.enum(['reject', 'keep']).default('reject'),
  })
  .prefault({});

export const protectionSchema = z
  .strictObject({
    /** Global access rules, checked when a connection is accepted. */
    access: globalAccess,
    /** Most connections one client may hold open at once, across listeners. 0: no limit. */
    max_connections_per_client: z.number().int().nonnegative().default(0),
    /** IPv6 clients are counted (limits, bans) by this many leading bits of their address. */
    ipv6_prefix: z.number().int().min(32).max(128).default(64),
    /** Most clients whose rate-limit and ban state is kept in memory (least recently seen go first). */
    max_clients: z.number().int().min(100).default(100_000),
    bans,
    paths,
  })
  .prefault({});

/** Per-listener settings. */
export const listenerProtection = {
  /** Expect a PROXY protocol (v1 or v2) header first on every connection; only from trusted_proxies. */
  proxy_protocol: z.boolean().default(false),
  /** Most open connections on this listener; past it new ones are closed at once. 0: no limit. */
  max_connections: z.number().int().nonnegative().default(0),
};
