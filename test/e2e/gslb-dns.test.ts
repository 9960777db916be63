/**
 * GSLB over DNS: `dig` (dnsutils) against Gatehouse's DNS listener, over UDP and TCP, with and
 * without an EDNS Client Subnet; names outside the zone are refused, names under it do not exist;
 * a region that is down is not named; the listener follows reloads.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import pino from 'pino';
import { Primary } from '../../src/workers/primary.ts';
import { closedPort } from '../helpers/backend.ts';
import { startProxy, type RunningProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/http.ts';
import { startRestartable, type Restartable } from '../helpers/upstreams.ts';

const run = promisify(execFile);
/** dig comes with Debian's dnsutils (CI installs it); without it these tests are skipped, saying why. */
const NO_DIG = spawnSync('dig', ['-v']).error === undefined ? false : 'dig not installed: apt-get install dnsutils (Debian) to run the GSLB DNS tests';

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args]);
  return stdout;
}

/** The addresses of a `+short` answer, sorted. */
async function digShort(port: number, ...args: string[]): Promise<string[]> {
  return (await dig(port, '+short', ...args)).trim().split('\n').filter((l) => l !== '').sort();
}

function config(backends: Restartable[], dns: Record<string, unknown> = {}): Omit<ConfigInput, 'listen'> {
  const [eu, us, asia] = backends as [Restartable, Restartable, Restartable];
  const upstream = (r: Restartable) => ({ servers: [{ url: r.url }], health_check: { path: '/', interval: 100, timeout: 100, fall: 1, rise: 1 } });
  return {
    upstreams: { eu: upstream(eu), us: upstream(us), asia: upstream(asia) },
    gslb: {
      global: {
        mode: 'dns',
        default_region: 'us',
        regions: {
          eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu', addresses: ['127.0.1.1', '2001:db8::1'] },
          us: { latitude: 38.95, longitude: -77.45, upstream: 'us', addresses: ['127.0.1.2'] },
          asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia', addresses: ['127.0.1.3'] },
        },
        dns: { listen: '127.0.0.1:0', zone: 'app.example.test', ttl: '20s', ...dns },
      },
    } as ConfigInput['gslb'],
    routes: [],
  };
}

async function start(t: TestContext): Promise<{ proxy: RunningProxy; port: number; backends: Restartable[] }> {
  const backends = [await startRestartable(t, 'eu'), await startRestartable(t, 'us'), await startRestartable(t, 'asia')];
  const proxy = await startProxy(t, config(backends));
  const port = proxy.gatehouse.dnsAddresses[0]?.port ?? 0;
  assert.ok(port > 0);
  return { proxy, port, backends };
}

describe('gslb dns mode', { skip: NO_DIG }, () => {
  it('answers with the region of the client subnet, or of the resolver, over UDP and TCP', async (t) => {
    const { port } = await start(t);
    assert.deepEqual(await digShort(port, 'app.example.test', 'A', '+subnet=85.214.0.0/24'), ['127.0.1.1']);
    assert.deepEqual(await digShort(port, 'app.example.test', 'A', '+subnet=165.21.1.0/24'), ['127.0.1.3']);
    assert.deepEqual(await digShort(port, 'APP.Example.Test.', 'A', '+subnet=8.8.8.0/24', '+tcp'), ['127.0.1.2']);
    assert.deepEqual(await digShort(port, 'app.example.test', 'AAAA', '+subnet=85.214.0.0/24'), ['2001:db8::1']);
    // Without a subnet the resolver's address (127.0.0.1, unknown) decides: the default region.
    assert.deepEqual(await digShort(port, 'app.example.test', 'A'), ['127.0.1.2']);
    assert.deepEqual(await digShort(port, 'app.example.test', 'A', '+tcp'), ['127.0.1.2']);
    const full = await dig(port, 'app.example.test', 'A', '+subnet=85.214.0.0/24');
    assert.match(full, /status: NOERROR/);
    assert.match(full, /flags: qr aa/);
    assert.match(full, /app\.example\.test\.\s+20\s+IN\s+A\s+127\.0\.1\.1/);
    // RFC 7871 §7.2.1: the answer's scope is the source prefix.
    assert.match(full, /CLIENT-SUBNET: 85\.214\.0\.0\/24\/24/);
  });

  it('refuses names outside the zone and says names under it do not exist', async (t) => {
    const { port } = await start(t);
    assert.match(await dig(port, 'example.com', 'A'), /status: REFUSED/);
    const missing = await dig(port, 'www.app.example.test', 'A');
    assert.match(missing, /status: NXDOMAIN/);
    assert.match(missing, /SOA/);
    const mx = await dig(port, 'app.example.test', 'MX');
    assert.match(mx, /status: NOERROR/);
    assert.match(mx, /ANSWER: 0/);
  });

  it('names the next nearest region while one is down, and counts the answers', async (t) => {
    const { proxy, port, backends } = await start(t);
    await backends[0]!.stop();
    await waitFor(async () => (await digShort(port, 'app.example.test', 'A', '+subnet=85.214.0.0/24'))[0] === '127.0.1.2', 5000, 'eu failed over to us');
    await backends[0]!.start();
    await waitFor(async () => (await digShort(port, 'app.example.test', 'A', '+subnet=85.214.0.0/24'))[0] === '127.0.1.1', 5000, 'eu back');
    const status = proxy.gatehouse.status() as { gslb: { global: { regions: Record<string, { dns_answers: number }> } } };
    assert.ok((status.gslb.global.regions['eu']?.dns_answers ?? 0) >= 1);
    assert.ok((status.gslb.global.regions['us']?.dns_answers ?? 0) >= 1);
  });

  it('follows reloads: the listener kept with its port, new answers given, closed when the block goes', async (t) => {
    const { proxy, port, backends } = await start(t);
    const next = config(backends);
    const regions = (next.gslb as Record<string, { regions: Record<string, { addresses: string[] }> }>)['global']!.regions;
    regions['us']!.addresses = ['127.0.2.2'];
    await proxy.gatehouse.reload(configFromObject({ listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, ...next }));
    assert.deepEqual(await digShort(port, 'app.example.test', 'A'), ['127.0.2.2']);
    const without = { ...next, gslb: {} };
    await proxy.gatehouse.reload(configFromObject({ listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, ...without }));
    assert.deepEqual(proxy.gatehouse.dnsAddresses, []);
  });

  it('with workers, one worker answers DNS and nothing binds twice', async (t) => {
    const backends = [await startRestartable(t, 'eu'), await startRestartable(t, 'us'), await startRestartable(t, 'asia')];
    const port = await closedPort();
    const full = configFromObject({
      listen: [{ address: '127.0.0.1:0' }],
      access_log: { enabled: false },
      shutdown_timeout: 2000,
      ...config(backends, { listen: `127.0.0.1:${port}` }),
    });
    const primary = await Primary.start(full, { logger: pino({ level: 'silent' }), workers: 2 });
    t.after(() => primary.stop(1000));
    assert.deepEqual(await digShort(port, 'app.example.test', 'A', '+subnet=165.21.1.0/24'), ['127.0.1.3']);
    assert.deepEqual(await digShort(port, 'app.example.test', 'A', '+subnet=85.214.0.0/24', '+tcp'), ['127.0.1.1']);
  });

  it('truncates a UDP answer larger than the resolver takes, and gives it whole over TCP', async (t) => {
    const backends = [await startRestartable(t, 'eu'), await startRestartable(t, 'us'), await startRestartable(t, 'asia')];
    const next = config(backends);
    const regions = (next.gslb as Record<string, { regions: Record<string, { addresses: string[] }> }>)['global']!.regions;
    regions['us']!.addresses = Array.from({ length: 40 }, (_, i) => `2001:db8::${i + 1}`);
    const proxy = await startProxy(t, next);
    const port = proxy.gatehouse.dnsAddresses[0]?.port ?? 0;
    const plain = await dig(port, 'app.example.test', 'AAAA', '+noedns', '+ignore');
    assert.match(plain, /flags: qr aa tc/);
    assert.match(plain, /ANSWER: 0/);
    // dig retries over TCP by itself.
    assert.equal((await digShort(port, 'app.example.test', 'AAAA', '+noedns')).length, 40);
    // With EDNS (dig advertises 1232 bytes), 40 AAAA records (~1.2 KB) are truncated too; 20 fit.
    regions['us']!.addresses = regions['us']!.addresses.slice(0, 20);
    await proxy.gatehouse.reload(configFromObject({ listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, ...next }));
    const edns = await dig(port, 'app.example.test', 'AAAA', '+ignore');
    assert.doesNotMatch(edns, /flags: qr aa tc/);
    assert.match(edns, /ANSWER: 20/);
  });
});
