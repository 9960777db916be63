/** The `gslb` blocks: regions, where clients are, how a region is chosen (docs/gslb.md). */
import { isIP } from 'node:net';
import { z } from 'zod';
import { address, duration, headerName, nameSchema } from './units.ts';

const COUNTRY = /^[A-Z]{2}$/;
const CONTINENTS = ['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'] as const;
/** Most regions in a block: a request's tried regions are kept as bits of one number (gslb/regions.ts). */
export const MAX_REGIONS = 31;

const countries = z.array(z.string().regex(COUNTRY, 'must be an ISO 3166-1 alpha-2 country code in capitals, such as DE')).min(1);
const continents = z.array(z.enum(CONTINENTS, { error: `must be a continent code: ${CONTINENTS.join(', ')}` })).min(1);

/** One region: where it is, which upstream serves it, and how it is reached from outside. */
const region = z
  .strictObject({
    /** Where the region's servers are (with longitude). */
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
    /** Or: the countries the region stands for (distance 0 from them, else from their nearest). */
    countries: countries.optional(),
    /** Or: the continents the region stands for. */
    continents: continents.optional(),
    /** The upstream that serves the region (proxy mode, and the region's health everywhere). */
    upstream: z.string(),
    /** Added to the region's distance (km) or round-trip time (ms, latency ranking): positive pushes clients away, negative draws them. */
    bias: z.number().default(0),
    /** The region's public host name (redirect mode), e.g. eu.example.com or eu.example.com:8443. */
    host: z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, 'must be a host name, optionally with :port').optional(),
    /** The region's public addresses, the DNS answers (A for IPv4, AAAA for IPv6). */
    addresses: z.array(z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address')).default([]),
  })
  .superRefine((value, ctx) => {
    const point = value.latitude !== undefined || value.longitude !== undefined;
    if (point && (value.latitude === undefined || value.longitude === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'latitude and longitude go together' });
    }
    if (!point && value.countries === undefined && value.continents === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a region needs a location: latitude and longitude, countries or continents' });
    }
  });

/** Clients from these countries or continents are served by these regions only (data residency). */
const residency = z
  .strictObject({
    countries: countries.optional(),
    continents: continents.optional(),
    /** The regions allowed, nearest first among them; when none is available the answer is 503. */
    regions: z.array(z.string()).min(1),
  })
  .superRefine((value, ctx) => {
    if (value.countries === undefined && value.continents === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs countries or continents' });
    }
  });

/** Gatehouse as an authoritative DNS server for one zone, answering with the chosen region's addresses. */
const dns = z.strictObject({
  /** UDP and TCP address to answer on, e.g. 0.0.0.0:53. */
  listen: address,
  /** The name answered (A/AAAA); other names under it get NXDOMAIN, names outside it REFUSED. */
  zone: z
    .string()
    .regex(/^([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?$/, 'must be a domain name such as app.example.com')
    .transform((v) => v.toLowerCase().replace(/\.$/, '')),
  /** Time to live of the answers: short, so that a failover reaches clients soon. */
  ttl: duration.default(30_000),
  /** Also answer over TCP on the same address (RFC 7766). */
  tcp: z.boolean().default(true),
});

/** One GSLB block; routes name it with `gslb: NAME`. */
const gslbBlockSchema = z
  .strictObject({
    /** proxy: forward to the chosen region's upstream; redirect: 307 to its host; dns: DNS answers only. */
    mode: z.enum(['proxy', 'redirect', 'dns']).default('proxy'),
    /** distance: great-circle distance to the client; latency: the regions' health-check round-trip times. */
    ranking: z.enum(['distance', 'latency']).default('distance'),
    /** An MMDB file (GeoLite2 City or Country, ip-location-db...); the embedded country database when absent. Read again when it changes. */
    database: z.string().min(1).optional(),
    /** The regions, by name. */
    regions: z.record(nameSchema('region'), region),
    /** The region for clients whose location is unknown (private addresses, not in the database). */
    default_region: z.string(),
    /** Response header naming the chosen region, e.g. X-Gatehouse-Region; none when absent. */
    region_header: headerName.optional(),
    /** Residency rules, first match wins; they hold even when a region outside them is nearer or theirs are down. */
    residency: z.array(residency).default([]),
    dns: dns.optional(),
  })
  .superRefine((value, ctx) => {
    const names = Object.keys(value.regions);
    if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['regions'], message: 'at least one region is needed' });
    if (names.length > MAX_REGIONS) ctx.addIssue({ code: 'custom', path: ['regions'], message: `at most ${MAX_REGIONS} regions` });
    if (!names.includes(value.default_region)) {
      ctx.addIssue({ code: 'custom', path: ['default_region'], message: `no region named "${value.default_region}" (regions: ${names.join(', ')})` });
    }
    value.residency.forEach((rule, i) => {
      rule.regions.forEach((name, j) => {
        if (!names.includes(name)) ctx.addIssue({ code: 'custom', path: ['residency', i, 'regions', j], message: `no region named "${name}"` });
      });
    });
    if (value.mode === 'redirect') {
      for (const [name, r] of Object.entries(value.regions)) {
        if (r.host === undefined) ctx.addIssue({ code: 'custom', path: ['regions', name, 'host'], message: 'mode: redirect needs each region\'s host' });
      }
    }
    if (value.mode === 'dns' && value.dns === undefined) ctx.addIssue({ code: 'custom', path: ['dns'], message: 'mode: dns needs a dns block' });
    if (value.dns !== undefined) {
      for (const [name, r] of Object.entries(value.regions)) {
        if (r.addresses.length === 0) ctx.addIssue({ code: 'custom', path: ['regions', name, 'addresses'], message: 'the dns block needs each region\'s addresses' });
      }
    }
  });

/** The `gslb` blocks by name (none by default). */
export const gslbSchema = z.record(nameSchema('gslb'), gslbBlockSchema).default({});

/** One validated `gslb` block. */
export type GslbBlockConfig = z.output<typeof gslbBlockSchema>;
