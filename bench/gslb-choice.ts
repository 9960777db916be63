// What choosing a GSLB region costs per request: the GeoIP look-up (cold: a new address each
// time; warm: addresses seen before, from the bounded cache) and the pick among the regions.
// The target is < 5 µs per choice (docs/gslb.md). Short and single-threaded.
// Usage: node bench/gslb-choice.ts [COUNT]
import { configFromObject } from '../src/config/load.ts';
import { compileSnapshot, retireSnapshot } from '../src/config/compile.ts';
import { Registry } from '../src/core/registry.ts';
import { EXAMPLE_REGIONS, EXAMPLE_UPSTREAMS } from './lib/gslb-example.ts';

const count = Number(process.argv[2] ?? 200_000);
const config = configFromObject({
  listen: [{ address: '127.0.0.1:0' }],
  upstreams: EXAMPLE_UPSTREAMS,
  gslb: {
    global: {
      default_region: 'us',
      regions: EXAMPLE_REGIONS,
      residency: [{ continents: ['EU'], regions: ['eu'] }],
    },
  },
  routes: [{ match: {}, gslb: 'global' }],
});
const registry = new Registry();
const snapshot = compileSnapshot(config, registry);
const gslb = snapshot.gslb.get('global');
if (gslb === undefined) throw new Error('no gslb block');

// Public-looking IPv4 addresses spread over the space (skipping 0/8, 10/8, 127/8 and 224+).
const addresses: string[] = [];
for (let i = 0; i < count; i++) {
  const a = 1 + ((i * 37) % 222);
  addresses.push(`${a === 10 || a === 127 ? a + 1 : a}.${(i * 13) % 256}.${(i >> 3) % 256}.${i % 256}`);
}

// An arrow function, not a declaration: it keeps the narrowing of `gslb` above.
const run = (list: readonly string[]): number => {
  let sink = 0;
  const started = performance.now();
  for (const ip of list) {
    const location = gslb.locate(ip);
    const chosen = gslb.pick(location, 0, false);
    sink += chosen === null ? 0 : chosen.index;
  }
  const micros = ((performance.now() - started) * 1000) / list.length;
  if (sink < 0) console.log(sink);
  return micros;
};

run(addresses.slice(0, 5_000)); // warm the code up
const cold = run(addresses);
run(addresses.slice(0, 50_000)); // fills the cache with these
const warm = run(addresses.slice(0, 50_000));
const pickOnly = (() => {
  const location = gslb.locate('85.214.0.1');
  const started = performance.now();
  let sink = 0;
  for (let i = 0; i < count; i++) sink += gslb.pick(location, 0, false)?.index ?? 0;
  if (sink < 0) console.log(sink);
  return ((performance.now() - started) * 1000) / count;
})();
console.log(`gslb region choice, 3 regions, embedded country database:`);
console.log(`  cold (new address each time):  ${cold.toFixed(3)} µs per choice`);
console.log(`  warm (address cached):         ${warm.toFixed(3)} µs per choice`);
console.log(`  pick alone (location known):   ${pickOnly.toFixed(3)} µs per choice`);
retireSnapshot(snapshot, registry);
await registry.close(0);
