/** GSLB: configuration errors with file:line:col, and the region pick (distance, bias, places, residency, spill order). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileSnapshot, retireSnapshot } from '../../src/config/compile.ts';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Registry } from '../../src/core/registry.ts';
import { countryLocation, distanceKm, pointLocation } from '../../src/gslb/countries.ts';
import { embeddedDatabasePath, GeoDatabase, toLocation } from '../../src/gslb/geo.ts';
import type { Gslb } from '../../src/gslb/regions.ts';
import { errorOf, yaml } from '../helpers/config.ts';

const BASE = [
  'listen: [{ address: "127.0.0.1:0" }]',
  'upstreams:',
  '  eu: { servers: [{ url: "http://127.0.0.1:1" }] }',
  '  us: { servers: [{ url: "http://127.0.0.1:2" }] }',
];

describe('gslb configuration errors', () => {
  test('a region needs a location, and names a known upstream', () => {
    assert.equal(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: eu }')),
      'gatehouse.yaml:9:11 gslb.g.regions.eu: a region needs a location: latitude and longitude, countries or continents',
    );
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: europe, continents: [EU] }')),
      /^gatehouse\.yaml:9:\d+ gslb\.g\.regions\.eu\.upstream: no upstream named "europe"/,
    );
  });

  test('the default region and residency regions must exist; routes must name a known block', () => {
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: mars', '    regions:', '      eu: { upstream: eu, continents: [EU] }')),
      /^gatehouse\.yaml:7:21 gslb\.g\.default_region: no region named "mars"/,
    );
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: eu, continents: [EU] }', '    residency: [{ continents: [EU], regions: [us] }]')),
      /gslb\.g\.residency\[0\]\.regions\[0\]: no region named "us"/,
    );
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: eu, continents: [EU] }', 'routes: [{ match: {}, gslb: h }]')),
      /routes\[0\]\.gslb: no gslb block named "h"/,
    );
  });

  test('more regions than a tried mask holds are refused where they are written', () => {
    const regions = Array.from({ length: 32 }, (_, i) => `      r${i}: { upstream: eu, continents: [EU] }`);
    assert.match(errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: r0', '    regions:', ...regions)), /^gatehouse\.yaml:\d+:\d+ gslb\.g\.regions: at most 31 regions/);
  });

  test('a database file that cannot be read is named', () => {
    assert.equal(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    database: /nonexistent/geo.mmdb', '    default_region: eu', '    regions:', '      eu: { upstream: eu, continents: [EU] }')),
      'gatehouse.yaml:7:15 gslb.g.database: cannot read /nonexistent/geo.mmdb (ENOENT)',
    );
  });

  test('redirect mode needs hosts; a dns block needs addresses; a bad country code is named', () => {
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    mode: redirect', '    default_region: eu', '    regions:', '      eu: { upstream: eu, continents: [EU] }')),
      /gslb\.g\.regions\.eu\.host: mode: redirect needs each region's host/,
    );
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: eu, continents: [EU] }', '    dns: { listen: "127.0.0.1:0", zone: a.test }')),
      /gslb\.g\.regions\.eu\.addresses: the dns block needs each region's addresses/,
    );
    assert.match(
      errorOf(yaml(...BASE, 'gslb:', '  g:', '    default_region: eu', '    regions:', '      eu: { upstream: eu, countries: [de] }')),
      /gslb\.g\.regions\.eu\.countries\[0\]: must be an ISO 3166-1 alpha-2 country code/,
    );
  });
});

/** A compiled block over upstreams eu, us, asia (no servers running: pools connect lazily). */
function compile(block: Record<string, unknown>): { gslb: Gslb; done: () => void; registry: Registry } {
  const registry = new Registry();
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    upstreams: {
      eu: { servers: [{ url: 'http://127.0.0.1:1' }] },
      us: { servers: [{ url: 'http://127.0.0.1:2' }] },
      asia: { servers: [{ url: 'http://127.0.0.1:3' }] },
    },
    gslb: { g: { default_region: 'us', ...block } } as unknown as ConfigInput['gslb'],
  });
  const snapshot = compileSnapshot(config, registry);
  return { gslb: snapshot.gslb.get('g') as Gslb, registry, done: () => retireSnapshot(snapshot, registry) };
}

const POINTS = {
  eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu' },
  us: { latitude: 38.95, longitude: -77.45, upstream: 'us' },
  asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia' },
};

const at = (code: string) => countryLocation(code);
const pick = (gslb: Gslb, code: string | null, tried = 0) => gslb.pick(code === null ? null : at(code), tried, true)?.name;

describe('gslb region pick', () => {
  test('great-circle distances are right', () => {
    // Frankfurt - New York is about 6,200 km.
    assert.ok(Math.abs(distanceKm(50.11, 8.68, 40.71, -74.01) - 6200) < 100);
  });

  test('nearest region by country, default for unknown, next nearest when tried', (t) => {
    const { gslb, done } = compile({ regions: POINTS });
    t.after(done);
    assert.equal(pick(gslb, 'PL'), 'eu');
    assert.equal(pick(gslb, 'BR'), 'us');
    assert.equal(pick(gslb, 'JP'), 'asia');
    assert.equal(pick(gslb, 'AU'), 'asia');
    assert.equal(pick(gslb, null), 'us');
    // eu tried: a Polish client goes to the next nearest.
    assert.equal(pick(gslb, 'PL', 1 << 0), 'us');
    assert.equal(pick(gslb, 'PL', (1 << 0) | (1 << 1)), 'asia');
    assert.equal(pick(gslb, 'PL', 0b111), undefined);
  });

  test('bias moves the boundary', (t) => {
    const { gslb, done } = compile({ regions: { ...POINTS, us: { ...POINTS.us, bias: 3200 } } });
    t.after(done);
    // Brazil's point is 5,918 km from Virginia and 9,069 km from Frankfurt: 3,200 km of bias tips it;
    // Canada's (3,439 and 6,713 km) stays.
    assert.equal(pick(gslb, 'BR'), 'eu');
    assert.equal(pick(gslb, 'CA'), 'us');
  });

  test('regions given by countries and continents; city-level points', (t) => {
    const { gslb, done } = compile({
      regions: {
        eu: { continents: ['EU'], upstream: 'eu' },
        us: { countries: ['US', 'CA', 'MX'], upstream: 'us' },
        asia: { continents: ['AS', 'OC'], upstream: 'asia' },
      },
    });
    t.after(done);
    assert.equal(pick(gslb, 'FR'), 'eu');
    assert.equal(pick(gslb, 'MX'), 'us');
    assert.equal(pick(gslb, 'NZ'), 'asia');
    // Morocco: nearest to a European country's point.
    assert.equal(pick(gslb, 'MA'), 'eu');
    // A city database's answer: Anchorage, in the US.
    assert.equal(gslb.pick(pointLocation(61.2, -149.9, 'US', 'NA'), 0, true)?.name, 'us');
  });

  test('residency restricts the choice; an unusable region is skipped, never one outside the rule', (t) => {
    const { gslb, done } = compile({ regions: POINTS, residency: [{ countries: ['GB'], continents: ['EU'], regions: ['eu'] }] });
    t.after(done);
    assert.equal(pick(gslb, 'DE'), 'eu');
    assert.equal(pick(gslb, 'GB'), 'eu');
    const eu = gslb.regions[0]!;
    eu.upstream.servers[0]!.state.setAdminDrain(true);
    try {
      assert.equal(pick(gslb, 'DE'), undefined, 'no allowed region is usable');
      // A city database's answer is held by the rule too (its country and continent, not a table row).
      const warsaw = pointLocation(52.23, 21.01, 'PL', 'EU');
      assert.equal(gslb.pick(warsaw, 0, true), null, 'a Warsaw point is not moved out of eu');
      assert.equal(gslb.pick(warsaw, 0, false)?.name, 'eu');
      assert.equal(gslb.pick(at('DE'), 0, false)?.name, 'eu', 'the fallback is still eu');
      assert.equal(pick(gslb, 'US'), 'us');
      // Turkey is in Asia for the country table: not held by the rule, it goes to the next nearest.
      assert.equal(pick(gslb, 'TR'), 'asia');
    } finally {
      eu.upstream.servers[0]!.state.setAdminDrain(false);
    }
  });
});

describe('gslb database records', () => {
  test('GeoLite2 City, GeoLite2 Country and ip-location-db shapes', () => {
    const city = toLocation({ country: { iso_code: 'PL' }, continent: { code: 'EU' }, location: { latitude: 52.23, longitude: 21.01 } });
    assert.deepEqual(city, { country: 'PL', continent: 'EU', lat: 52.23, lon: 21.01, countryIndex: -1 });
    assert.equal(toLocation({ country: { iso_code: 'JP' }, continent: { code: 'AS' } }), countryLocation('JP'));
    assert.equal(toLocation({ registered_country: { iso_code: 'BR' } }), countryLocation('BR'));
    assert.equal(toLocation({ country_code: 'SG' }), countryLocation('SG'));
    assert.equal(toLocation({ country_code: 'ZZ' }), null, 'a code the table does not know');
    assert.equal(toLocation({}), null);
  });

  test('lookups are cached per address: the same interned location, counted as a hit', (t) => {
    const db = new GeoDatabase(embeddedDatabasePath(), false, () => {});
    t.after(() => db.close());
    const first = db.lookup('8.8.8.8');
    assert.equal(first, countryLocation('US'));
    assert.equal(db.lookup('8.8.8.8'), first);
    assert.equal(db.lookup('10.0.0.1'), null, 'a private address is unknown');
    assert.equal(db.lookup('10.0.0.1'), null);
    assert.equal(db.lookup(''), null, 'an address the reader refuses is unknown');
    assert.deepEqual({ lookups: db.lookups, cacheHits: db.cacheHits }, { lookups: 5, cacheHits: 2 }, 'known and unknown answers are both remembered');
  });
});
