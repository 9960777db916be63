/**
 * Where a client is: an MMDB database (MaxMind's format, read by `maxmind`) answers with a
 * country, a continent and, for city-level databases, coordinates. The embedded default is the
 * country-level ip-location-db database; countries are placed by ./countries.ts.
 *
 * A database is state that outlives reloads (kept in the registry by path): it is read once,
 * and read again when its file changes. Lookups are cached per address in a bounded map.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { Reader, type Response } from 'maxmind';
import type { SharedState } from '../core/registry.ts';
import { countryLocation, pointLocation, type GeoLocation } from './countries.ts';

/** The embedded database (CC0 package; data CC BY 4.0 by the NRO, see docs/gslb.md). */
export function embeddedDatabasePath(): string {
  return createRequire(import.meta.url).resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
}

/** Lookups remembered; past this the cache starts again (a scan of many addresses cannot grow it). */
const CACHE_LIMIT = 65_536;
/** How often a configured database file is checked for a change, ms. */
const WATCH_INTERVAL_MS = 2_000;

/** The record shapes understood: GeoLite2/GeoIP2 City and Country, and ip-location-db's. */
export interface GeoRecord {
  country_code?: string;
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  continent?: { code?: string };
  location?: { latitude?: number; longitude?: number };
}

type Log = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

export class GeoDatabase implements SharedState {
  readonly path: string;
  #reader: Reader<Response>;
  #cache = new Map<string, GeoLocation | null>();
  readonly #log: Log;
  readonly #watched: boolean;
  readonly #onChange = (current: Stats, previous: Stats): void => this.#changed(current, previous);
  /** Lookups and how many were answered from the cache, for the admin API. */
  lookups = 0;
  cacheHits = 0;

  /** Reads `path` (throws when it cannot be read or is not an MMDB file); `watch` follows changes. */
  constructor(path: string, watch: boolean, log: Log) {
    this.path = path;
    this.#log = log;
    this.#reader = openReader(path);
    this.#watched = watch;
    if (watch) watchFile(path, { interval: WATCH_INTERVAL_MS, persistent: false }, this.#onChange);
  }

  /** The client's location, or null when the database does not know the address (private ranges...). */
  lookup(ip: string): GeoLocation | null {
    this.lookups++;
    const cache = this.#cache;
    const cached = cache.get(ip);
    if (cached !== undefined) {
      this.cacheHits++;
      return cached;
    }
    let location: GeoLocation | null = null;
    try {
      // An IPv4-only database walks an IPv6 address down to some unrelated record: unknown instead.
      const record = this.#reader.metadata.ipVersion === 4 && ip.includes(':') ? null : (this.#reader.get(ip) as GeoRecord | null);
      location = record === null ? null : toLocation(record);
    } catch {
      // Not an IP address the reader accepts (a Unix socket's empty peer): unknown.
      location = null;
    }
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(ip, location);
    return location;
  }

  /** The database's type and build date, for the admin API. */
  describe(): Record<string, unknown> {
    const meta = this.#reader.metadata;
    return { path: this.path, type: meta.databaseType, built: meta.buildEpoch.toISOString(), lookups: this.lookups, cache_hits: this.cacheHits };
  }

  #changed(current: Stats, previous: Stats): void {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
    if (current.nlink === 0 && current.size === 0) return;
    try {
      this.#reader = openReader(this.path);
      this.#cache = new Map();
      this.#log('info', { database: this.path }, 'gslb database reloaded');
    } catch (error: unknown) {
      // Half-written, or replaced by something else: the previous data stays until a good file appears.
      this.#log('warn', { database: this.path, error: String(error) }, 'gslb database changed but cannot be read; keeping the previous one');
    }
  }

  close(): void {
    if (this.#watched) unwatchFile(this.path, this.#onChange);
  }
}

/** Decoded records kept by their offset in the file (a country database has a few hundred; a city one, many more). */
const RECORD_CACHE_LIMIT = 100_000;

function openReader(path: string): Reader<Response> {
  const buffer = readFileSync(path);
  const records = new Map<string | number, unknown>();
  const cache = {
    get: (key: string | number): unknown => records.get(key),
    set: (key: string | number, value: unknown): void => {
      if (records.size >= RECORD_CACHE_LIMIT) records.clear();
      records.set(key, value);
    },
  };
  return new Reader<Response>(buffer, { cache });
}

/** A record as a location: its own coordinates when it has them, else its country's. */
export function toLocation(record: GeoRecord): GeoLocation | null {
  const country = record.country_code ?? record.country?.iso_code ?? record.registered_country?.iso_code;
  const lat = record.location?.latitude;
  const lon = record.location?.longitude;
  if (lat !== undefined && lon !== undefined) return pointLocation(lat, lon, country, record.continent?.code);
  if (country === undefined) return null;
  return countryLocation(country);
}
