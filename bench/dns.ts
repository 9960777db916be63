// DNS answers per second of the GSLB's DNS listener on one core: Gatehouse (this process, one
// thread) answers dnsperf (Debian's dnsperf package) for SECONDS seconds, with an EDNS Client
// Subnet in every query (the lookup path). The target is >= 20,000 queries/s (docs/gslb.md).
// Usage: node bench/dns.ts [SECONDS]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { Gatehouse } from '../src/gatehouse.ts';

const seconds = Number(process.argv[2] ?? 5);
const region = (lat: number, lon: number, upstream: string, address: string) => ({ latitude: lat, longitude: lon, upstream, addresses: [address] });
const gatehouse = await Gatehouse.start(
  configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    access_log: { enabled: false },
    upstreams: {
      eu: { servers: [{ url: 'http://127.0.0.1:19101' }] },
      us: { servers: [{ url: 'http://127.0.0.1:19102' }] },
      asia: { servers: [{ url: 'http://127.0.0.1:19103' }] },
    },
    gslb: {
      global: {
        mode: 'dns',
        default_region: 'us',
        regions: {
          eu: region(50.11, 8.68, 'eu', '127.0.1.1'),
          us: region(38.95, -77.45, 'us', '127.0.1.2'),
          asia: region(1.35, 103.82, 'asia', '127.0.1.3'),
        },
        dns: { listen: '127.0.0.1:0', zone: 'app.example.test' },
      },
    },
  }),
  { logger: pino({ level: 'warn' }) },
);
const port = gatehouse.dnsAddresses[0]?.port;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-dns-bench-'));
const queries = join(dir, 'queries.txt');
writeFileSync(queries, 'app.example.test A\napp.example.test AAAA\nwww.app.example.test A\n');
// ECS option 8: family 1 (IPv4), source /24, scope 0, 85.214.0.0 (Germany).
const args = ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-c', '4', '-q', '200', '-E', '8:0001180055d600'];
const output = await new Promise<string>((resolve, reject) => {
  execFile('dnsperf', args, { timeout: (seconds + 30) * 1000 }, (error, stdout) => (error !== null ? reject(error) : resolve(stdout)));
}).catch((error: unknown) => `dnsperf failed (is the dnsperf package installed?): ${String(error)}`);
const qps = /Queries per second:\s+([\d.]+)/.exec(output)?.[1];
const lost = /Queries lost:\s+(.+)/.exec(output)?.[1];
console.log(qps === undefined ? output : `gslb dns: ${Math.round(Number(qps))} queries/s on one thread (lost: ${lost ?? '?'})`);
rmSync(dir, { recursive: true, force: true });
await gatehouse.stop(0);
