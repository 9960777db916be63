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
import { EXAMPLE_REGIONS, EXAMPLE_UPSTREAMS } from './lib/gslb-example.ts';

const seconds = Number(process.argv[2] ?? 5);
const gatehouse = await Gatehouse.start(
  configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    access_log: { enabled: false },
    upstreams: EXAMPLE_UPSTREAMS,
    gslb: {
      global: {
        mode: 'dns',
        default_region: 'us',
        regions: EXAMPLE_REGIONS,
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
