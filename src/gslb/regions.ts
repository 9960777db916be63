/**
 * A gslb block compiled: its regions, their scores for every country (precomputed: distance plus
 * bias), residency masks, and the pick, which is one pass over the regions with no allocation (but a
 * city-level point's first, which computes its row).
 *
 * A region is usable while its upstream has a server that can take a request (not down, ejected,
 * draining or full) and its circuit breaker has room: the same tests the upstream's own choice
 * makes (upstream.ts), read from the state kept across reloads.
 */
import { isIP } from 'node:net';
import { MAX_REGIONS, type GslbBlockConfig } from '../config/gslb-schema.ts';
import { errorMessage } from '../core/caught.ts';
import type { Registry, SharedState } from '../core/registry.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { COUNTRIES, countriesOf, countryLocation, distanceKm, type GeoLocation } from './countries.ts';
import { embeddedDatabasePath, GeoDatabase } from './geo.ts';

/** Counters of one region, kept across reloads (by block and region name). */
export class RegionCounters implements SharedState {
  /** Requests (and DNS answers) sent to the region. */
  requests = 0;
  /** Of those, the ones that came because a nearer region could not take them. */
  spilled = 0;
  /** DNS answers naming the region. */
  dnsAnswers = 0;
  close(): void {}
}

export interface Region {
  readonly name: string;
  /** Position in the block; bit (1 << index) in tried masks. */
  readonly index: number;
  readonly upstream: Upstream;
  readonly bias: number;
  readonly host: string | null;
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  readonly counters: RegionCounters;
  /** The points the region stands at (one, or its countries' points). */
  readonly points: readonly { readonly lat: number; readonly lon: number }[];
  readonly countries: ReadonlySet<string>;
  readonly continents: ReadonlySet<string>;
}

/** How long a latency ranking's round-trip times are used before they are read again, ms. */
const LATENCY_REFRESH_MS = 500;
/** A region without any measured round trip ranks behind every measured one. */
const UNMEASURED_MS = 1e6;

export class Gslb {
  readonly name: string;
  readonly mode: GslbBlockConfig['mode'];
  readonly regions: readonly Region[];
  readonly defaultRegion: Region;
  /** Lower-case header name, or null. */
  readonly regionHeader: string | null;
  readonly latency: boolean;
  readonly database: GeoDatabase;
  readonly #databaseKey: string;
  /** Distance scores (km + bias): row per country (COUNTRIES order), then one row for unknown locations. */
  readonly #scores: Float64Array;
  /** Allowed regions per country row (residency); all bits when no rule applies. */
  readonly #allowed: Int32Array;
  readonly #rules: readonly { countries: ReadonlySet<string>; continents: ReadonlySet<string>; mask: number }[];
  readonly #latencyScores: Float64Array;
  /**
   * City-level points' scores and residency masks, computed on a point's first pick: the database
   * hands out one location object per address (geo.ts caches them), so later picks only read.
   */
  readonly #pointRows = new WeakMap<GeoLocation, { readonly scores: Float64Array; readonly allowed: number }>();
  #latencyAt = -Infinity;
  /** Location-less requests (unknown or private addresses). */
  unknown = 0;
  /** The best allowed region of the last pick, usable or not (a pick that returned another spilled). */
  lastNearest: Region | null = null;

  constructor(name: string, config: GslbBlockConfig, upstreams: ReadonlyMap<string, Upstream>, registry: Registry) {
    this.name = name;
    this.mode = config.mode;
    this.latency = config.ranking === 'latency';
    this.regionHeader = config.region_header?.toLowerCase() ?? null;
    const entries = Object.entries(config.regions);
    // The schema checked the count; reaching this is a bug.
    if (entries.length > MAX_REGIONS) throw new Error(`gslb.${name}.regions: at most ${MAX_REGIONS} regions`);
    const dbPath = config.database ?? embeddedDatabasePath();
    this.#databaseKey = `gslb-db:${dbPath}`;
    this.database = registry.acquireShared(this.#databaseKey, () => openDatabase(name, dbPath, config.database !== undefined, registry));
    this.regions = entries.map(([regionName, r], index) => {
      const upstream = upstreams.get(r.upstream);
      // The loader checked the reference; reaching this is a bug.
      if (upstream === undefined) throw new Error(`gslb.${name}.regions.${regionName}: unknown upstream ${r.upstream}`);
      const countries = new Set(r.countries ?? []);
      const continents = new Set(r.continents ?? []);
      const points = r.latitude !== undefined && r.longitude !== undefined ? [{ lat: r.latitude, lon: r.longitude }] : placesOf(countries, continents);
      return Object.freeze({
        name: regionName,
        index,
        upstream,
        bias: r.bias,
        host: r.host ?? null,
        ipv4: r.addresses.filter((a) => isIP(a) === 4),
        ipv6: r.addresses.filter((a) => isIP(a) === 6),
        counters: registry.acquireShared(countersKey(name, regionName), () => new RegionCounters()),
        points,
        countries,
        continents,
      });
    });
    this.defaultRegion = this.regions.find((r) => r.name === config.default_region) as Region;
    const byName = new Map(this.regions.map((r) => [r.name, r]));
    const all = (1 << this.regions.length) - 1;
    this.#rules = config.residency.map((rule) => ({
      countries: new Set(rule.countries ?? []),
      continents: new Set(rule.continents ?? []),
      mask: rule.regions.reduce((m, r) => m | (1 << (byName.get(r) as Region).index), 0),
    }));
    const n = this.regions.length;
    const rows = COUNTRIES.length + 1;
    this.#scores = new Float64Array(rows * n);
    this.#allowed = new Int32Array(rows).fill(all);
    COUNTRIES.forEach((country, row) => {
      for (const region of this.regions) this.#scores[row * n + region.index] = distanceTo(region, country) + region.bias;
      this.#allowed[row] = this.#ruleFor(country.country, country.continent) ?? all;
    });
    // Unknown locations: the default region, then the others by distance from it.
    const home = this.defaultRegion.points[0] ?? { lat: 0, lon: 0 };
    for (const region of this.regions) {
      this.#scores[COUNTRIES.length * n + region.index] = region === this.defaultRegion ? -Infinity : minDistance(region, home.lat, home.lon) + region.bias;
    }
    this.#latencyScores = new Float64Array(n);
  }

  /**
   * The best region for `location` (null: unknown) that is usable and not in `tried` (bits by
   * region index), or, when `usableOnly` is false and none is, the best allowed one regardless.
   * Null when residency allows no region left.
   */
  pick(location: GeoLocation | null, tried: number, usableOnly: boolean): Region | null {
    const regions = this.regions;
    const n = regions.length;
    // Unknown locations: the last row (the default region first), whatever the ranking.
    let scores = this.#scores;
    let base = COUNTRIES.length * n;
    let allowed = -1;
    if (location !== null) {
      if (location.countryIndex >= 0) {
        base = location.countryIndex * n;
        allowed = this.#allowed[location.countryIndex] as number;
      } else {
        const row = this.#pointRow(location);
        scores = row.scores;
        base = 0;
        allowed = row.allowed;
      }
      if (this.latency) {
        scores = this.#latencyRow();
        base = 0;
      }
    }
    let best: Region | null = null;
    let bestScore = Infinity;
    let fallback: Region | null = null;
    let fallbackScore = Infinity;
    for (let i = 0; i < n; i++) {
      const bit = 1 << i;
      if ((allowed & bit) === 0 || (tried & bit) !== 0) continue;
      const region = regions[i] as Region;
      const score = scores[base + i] as number;
      if (score < fallbackScore || fallback === null) {
        fallback = region;
        fallbackScore = score;
      }
      if ((score < bestScore || best === null) && usable(region.upstream)) {
        best = region;
        bestScore = score;
      }
    }
    this.lastNearest = fallback;
    return best ?? (usableOnly ? null : fallback);
  }

  /** The client's location; null (counted as unknown) when the database does not know the address. */
  locate(ip: string): GeoLocation | null {
    const location = this.database.lookup(ip);
    if (location === null) this.unknown++;
    return location;
  }

  /** Counts a request (or DNS answer) sent to the last pick's region: spilled when it is not the nearest allowed one. */
  count(region: Region): void {
    const counters = region.counters;
    counters.requests++;
    if (region !== this.lastNearest) counters.spilled++;
  }

  /** The residency mask for a country and continent; undefined when no rule names them. */
  #ruleFor(country: string, continent: string): number | undefined {
    for (const rule of this.#rules) if (rule.countries.has(country) || rule.continents.has(continent)) return rule.mask;
    return undefined;
  }

  /** A city-level point's scores (distance + bias, by region index) and residency mask (all bits when no rule applies). */
  #pointRow(location: GeoLocation): { readonly scores: Float64Array; readonly allowed: number } {
    let row = this.#pointRows.get(location);
    if (row === undefined) {
      const scores = new Float64Array(this.regions.length);
      for (const region of this.regions) scores[region.index] = distanceTo(region, location) + region.bias;
      row = { scores, allowed: this.#ruleFor(location.country, location.continent) ?? -1 };
      this.#pointRows.set(location, row);
    }
    return row;
  }

  /** Each region's best health-check round trip (or response time) plus bias, read again twice a second. */
  #latencyRow(): Float64Array {
    const now = performance.now();
    const row = this.#latencyScores;
    if (now - this.#latencyAt < LATENCY_REFRESH_MS) return row;
    this.#latencyAt = now;
    for (const region of this.regions) row[region.index] = regionRtt(region.upstream) + region.bias;
    return row;
  }

  /** Gives back the database and counters; called when the snapshot is retired. */
  release(registry: Registry): void {
    registry.releaseShared(this.#databaseKey);
    for (const region of this.regions) registry.releaseShared(countersKey(this.name, region.name));
  }
}

/** Some server of the upstream can take a request now, and its circuit breaker has room. */
export function usable(upstream: Upstream): boolean {
  const max = upstream.breaker.maxInFlight;
  if (max !== 0 && upstream.state.inFlight >= max) return false;
  for (const server of upstream.available) if (!server.full) return true;
  return false;
}

/** The shortest round trip among the upstream's available servers: last passing health check, else response-time average. */
export function regionRtt(upstream: Upstream): number {
  let best = UNMEASURED_MS;
  for (const server of upstream.available) {
    const check = server.state.lastCheck;
    const ms = check !== null && check.ok ? check.ms : server.state.ewma > 0 ? server.state.ewma : UNMEASURED_MS;
    if (ms < best) best = ms;
  }
  return best;
}

function countersKey(block: string, region: string): string {
  return `gslb-counters:${block}|${region}`;
}

function openDatabase(block: string, path: string, watch: boolean, registry: Registry): GeoDatabase {
  try {
    return new GeoDatabase(path, watch, (level, fields, message) => registry.logger?.[level](fields, message));
  } catch (error: unknown) {
    throw new Error(`gslb.${block}.database: cannot read ${path} as an MMDB database: ${errorMessage(error)}`, { cause: error });
  }
}

/** A region given by countries and continents stands at each of their points. */
function placesOf(countries: ReadonlySet<string>, continents: ReadonlySet<string>): { lat: number; lon: number }[] {
  const points: { lat: number; lon: number }[] = [];
  for (const code of countries) {
    const c = countryLocation(code);
    if (c !== null) points.push({ lat: c.lat, lon: c.lon });
  }
  for (const continent of continents) for (const c of countriesOf(continent)) points.push({ lat: c.lat, lon: c.lon });
  return points;
}

/** 0 from a country or continent the region stands for, else the distance to its nearest point. */
function distanceTo(region: Region, location: GeoLocation): number {
  if (region.countries.has(location.country) || region.continents.has(location.continent)) return 0;
  return minDistance(region, location.lat, location.lon);
}

function minDistance(region: Region, lat: number, lon: number): number {
  let best = Infinity;
  for (const p of region.points) best = Math.min(best, distanceKm(lat, lon, p.lat, p.lon));
  return best;
}
