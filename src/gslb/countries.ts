/** Countries as places: a representative point and a continent for each ISO 3166-1 code (./country-table.ts). */
import { COUNTRY_TABLE } from './country-table.ts';

/** Where a client is, as far as the database says. Country locations are interned: one object per country. */
export interface GeoLocation {
  /** ISO 3166-1 alpha-2, upper case; '' when unknown. */
  readonly country: string;
  /** AF AN AS EU NA OC SA; '' when unknown. */
  readonly continent: string;
  /** Degrees. */
  readonly lat: number;
  readonly lon: number;
  /** Index in COUNTRIES (rankings by country are precomputed); -1 for a point of its own (a city database). */
  readonly countryIndex: number;
}

function parse(): GeoLocation[] {
  const out: GeoLocation[] = [];
  for (const line of COUNTRY_TABLE.split('\n')) {
    const [country, continent, lat, lon] = line.split(' ');
    if (country === undefined || continent === undefined || lat === undefined || lon === undefined) continue;
    out.push(Object.freeze({ country, continent, lat: Number(lat), lon: Number(lon), countryIndex: out.length }));
  }
  return out;
}

/** Every known country, in table order (countryIndex is the position). */
export const COUNTRIES: readonly GeoLocation[] = parse();
const BY_CODE = new Map(COUNTRIES.map((c) => [c.country, c]));

/** The country's location, or null for a code the table does not know. */
export function countryLocation(code: string): GeoLocation | null {
  return BY_CODE.get(code.toUpperCase()) ?? null;
}

/** A location with its own coordinates (a city database's answer). */
export function pointLocation(lat: number, lon: number, country: string | undefined, continent: string | undefined): GeoLocation {
  const known = country === undefined ? null : countryLocation(country);
  return { country: known?.country ?? '', continent: continent ?? known?.continent ?? '', lat, lon, countryIndex: -1 };
}

/** The countries of a continent. */
export function countriesOf(continent: string): GeoLocation[] {
  return COUNTRIES.filter((c) => c.continent === continent);
}

const EARTH_RADIUS_KM = 6371;
const RAD = Math.PI / 180;

/** Great-circle distance in km (haversine). */
export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}
