/**
 * GSLB over HTTP: clients from different continents (named by a trusted proxy's X-Forwarded-For
 * or a PROXY protocol header) land in the nearest region; a region whose servers die loses its
 * clients to the next nearest without a failed request and gets them back; residency rules
 * hold; redirect mode names the region's host. The embedded database places the addresses:
 * 85.214.0.1 DE, 212.77.100.101 PL, 8.8.8.8 US, 200.160.2.3 BR, 165.21.1.1 SG, 133.11.0.1 JP.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import WebSocket, { WebSocketServer } from 'ws';
import { startBackend } from '../helpers/backend.ts';
import { startProxy, type RunningProxy } from '../helpers/proxy.ts';
import { call } from '../helpers/admin.ts';
import { decoded, fetchRaw } from '../helpers/cache.ts';
import { request, waitFor } from '../helpers/http.ts';
import { client, isHealthCheck, runMany, startRestartable, tally, type Handler, type Restartable } from '../helpers/upstreams.ts';

const HEALTH = { path: '/', interval: 100, timeout: 100, fall: 1, rise: 1 };

interface Regions {
  eu: Restartable;
  us: Restartable;
  asia: Restartable;
}

async function regionBackends(t: TestContext, handler?: (name: string) => Handler): Promise<Regions> {
  return {
    eu: await startRestartable(t, 'eu', handler?.('eu')),
    us: await startRestartable(t, 'us', handler?.('us')),
    asia: await startRestartable(t, 'asia', handler?.('asia')),
  };
}

/** The example's three regions (Frankfurt, Virginia, Singapore) on these backends. */
function gslbConfig(b: Regions, block: Record<string, unknown> = {}, healthCheck = true): Omit<ConfigInput, 'listen'> {
  const upstream = (r: Restartable) => ({ servers: [{ url: r.url }], ...(healthCheck ? { health_check: HEALTH } : {}) });
  return {
    trusted_proxies: ['127.0.0.1'],
    upstreams: { eu: upstream(b.eu), us: upstream(b.us), asia: upstream(b.asia) },
    gslb: {
      global: {
        region_header: 'X-Gatehouse-Region',
        default_region: 'us',
        regions: {
          eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu', host: 'eu.example.test:8443' },
          us: { latitude: 38.95, longitude: -77.45, upstream: 'us', host: 'us.example.test' },
          asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia', host: 'asia.example.test' },
        },
        ...block,
      },
    } as ConfigInput['gslb'],
    routes: [{ match: {}, gslb: 'global' }],
  };
}

async function from(proxy: RunningProxy, ip: string, path = '/'): Promise<{ status: number; region: string | undefined; body: string; location: string | undefined }> {
  const res = await request(`${proxy.url}${path}`, { headers: { 'x-forwarded-for': ip } });
  return { status: res.status, region: res.headers['x-gatehouse-region'] as string | undefined, body: res.body, location: res.headers.location };
}

function gslbStatus(proxy: RunningProxy): { regions: Record<string, { requests: number; spilled_in: number; usable: boolean }> } {
  return (proxy.gatehouse.status() as { gslb: { global: { regions: Record<string, { requests: number; spilled_in: number; usable: boolean }> } } }).gslb.global;
}

describe('gslb proxy mode', () => {
  it('sends clients from each continent to the nearest region, and unknown ones to the default', async (t) => {
    const b = await regionBackends(t);
    const proxy = await startProxy(t, gslbConfig(b));
    const expected: [string, string][] = [
      ['85.214.0.1', 'eu'],
      ['212.77.100.101', 'eu'],
      ['8.8.8.8', 'us'],
      ['200.160.2.3', 'us'],
      ['165.21.1.1', 'asia'],
      ['133.11.0.1', 'asia'],
      ['10.1.2.3', 'us'],
    ];
    for (const [ip, region] of expected) {
      const res = await from(proxy, ip);
      assert.equal(res.status, 200, ip);
      assert.equal(res.body, region, `${ip} is served by ${region}`);
      assert.equal(res.region, region, `${ip} is told its region`);
    }
    const status = gslbStatus(proxy);
    assert.equal(status.regions['eu']?.requests, 2);
    assert.equal(status.regions['asia']?.requests, 2);
    assert.equal(status.regions['us']?.requests, 3);
    // Every region could serve: none took a request a nearer one could not.
    for (const region of ['eu', 'us', 'asia']) assert.equal(status.regions[region]?.spilled_in, 0, `${region} took nothing spilled`);
  });

  it('is explained by the admin API: the client\'s country, the region and the server it would take', async (t) => {
    const b = await regionBackends(t);
    const proxy = await startProxy(t, { ...gslbConfig(b), admin: { address: '127.0.0.1:0' } });
    const port = proxy.gatehouse.adminAddress?.port ?? 0;
    const explain = async (client: string): Promise<Record<string, unknown>> => (await call(port, 'POST', '/explain', JSON.stringify({ url: '/x', client }), { 'content-type': 'application/json' })).body as Record<string, unknown>;
    const eu = await explain('85.214.0.1');
    assert.equal(eu.action, 'gslb');
    assert.deepEqual(eu.gslb, { name: 'global', mode: 'proxy', country: 'DE', continent: 'EU', region: 'eu' });
    assert.equal(eu.upstream, 'eu');
    assert.equal(eu.server, new URL(b.eu.url).host);
    const unknown = await explain('10.1.2.3');
    assert.deepEqual(unknown.gslb, { name: 'global', mode: 'proxy', country: null, continent: null, region: 'us' });
  });

  it('compresses what a region answers, as on any forwarding route', async (t) => {
    const text = 'region text '.repeat(1000);
    const b = await regionBackends(t, (name) => (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${name} ${text}`);
    });
    const proxy = await startProxy(t, { ...gslbConfig(b, {}, false), compress: { enabled: true } });
    const res = await fetchRaw(`${proxy.url}/page`, { 'x-forwarded-for': '85.214.0.1', 'accept-encoding': 'gzip' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['x-gatehouse-region'], 'eu');
    assert.equal(decoded(res), `eu ${text}`);
  });

  it('takes the client from a PROXY protocol header', async (t) => {
    const b = await regionBackends(t);
    const proxy = await startProxy(t, { ...gslbConfig(b), listen: [{ address: '127.0.0.1:0', proxy_protocol: true }] } as Omit<ConfigInput, 'listen'>);
    const socket = connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('PROXY TCP4 165.21.1.1 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /x-gatehouse-region: asia/i);
    assert.ok(text.endsWith('asia'));
  });

  it('moves a region\'s clients to the next nearest when its servers die, without a failed request, and back when it recovers', async (t) => {
    const b = await regionBackends(t);
    const proxy = await startProxy(t, gslbConfig(b));
    const send = client(t, proxy.url, 4);
    const germany = { 'x-forwarded-for': '85.214.0.1' };
    assert.equal((await send('/', { headers: germany })).body, 'eu');
    // A steady stream of requests from Germany while eu's only server is killed.
    const seen: string[] = [];
    const failures: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const reply = await send('/', { headers: germany });
        if (reply.status !== 200) failures.push(reply.status);
        else seen.push(reply.body);
      }
    })();
    await waitFor(() => seen.length >= 20, 10_000, 'traffic before the failure');
    await b.eu.stop();
    // Virginia is nearer Germany than Singapore.
    await waitFor(() => seen.slice(-20).every((r) => r === 'us') && seen.length > 40, 10_000, 'eu clients served by us');
    await b.eu.start();
    await waitFor(() => seen.slice(-10).every((r) => r === 'eu'), 10_000, 'eu clients back in eu');
    running = false;
    await load;
    assert.deepEqual(failures, [], 'no request failed');
    assert.ok(seen.includes('us'));
    assert.ok(!seen.includes('asia'));
    assert.ok(gslbStatus(proxy).regions['us']!.spilled_in > 0);
  });

  it('spills over within the attempt loop when a region dies before health checks notice', async (t) => {
    const b = await regionBackends(t);
    // No health checks: the first failed connect is what tells.
    const proxy = await startProxy(t, gslbConfig(b, {}, false));
    await b.eu.stop();
    for (let i = 0; i < 3; i++) {
      const res = await from(proxy, '85.214.0.1');
      assert.equal(res.status, 200);
      assert.equal(res.body, 'us');
      assert.equal(res.region, 'us', 'the header names the region that answered');
    }
    // A single server is never ejected (outlier detection keeps one of one), so every request
    // tries eu first: more than eu's retry budget (10/s over 10 s, +20%) allows, and none fails.
    const send = client(t, proxy.url, 8);
    const replies = await runMany(300, 8, () => send('/', { headers: { 'x-forwarded-for': '85.214.0.1' } }));
    assert.deepEqual(tally(replies.map((r) => `${r.status} ${r.body}`)), { '200 us': 300 });
  });

  it('keeps residency: EU clients stay in EU regions, 503 when those are down, never moved out', async (t) => {
    const b = await regionBackends(t);
    // Asia is made the nearest for everyone by bias; the EU rule still holds.
    const proxy = await startProxy(
      t,
      gslbConfig(b, {
        regions: {
          eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu' },
          us: { latitude: 38.95, longitude: -77.45, upstream: 'us' },
          asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia', bias: -20_000 },
        },
        residency: [{ continents: ['EU'], regions: ['eu'] }],
      }),
    );
    assert.equal((await from(proxy, '8.8.8.8')).body, 'asia');
    assert.equal((await from(proxy, '85.214.0.1')).body, 'eu');
    assert.equal((await from(proxy, '212.77.100.101')).body, 'eu');
    await b.eu.stop();
    await waitFor(() => gslbStatus(proxy).regions['eu']?.usable === false, 5000, 'eu down');
    for (const ip of ['85.214.0.1', '212.77.100.101']) {
      const res = await from(proxy, ip);
      assert.equal(res.status, 503, `${ip} is refused rather than moved out of the EU`);
      assert.equal(res.region, 'eu');
    }
    assert.equal((await from(proxy, '8.8.8.8')).body, 'asia');
  });

  it('redirect mode answers 307 to the region\'s host with the path and query', async (t) => {
    const b = await regionBackends(t);
    const proxy = await startProxy(t, gslbConfig(b, { mode: 'redirect' }));
    const eu = await from(proxy, '85.214.0.1', '/a/b?x=1&y=2');
    assert.equal(eu.status, 307);
    assert.equal(eu.location, 'http://eu.example.test:8443/a/b?x=1&y=2');
    assert.equal(eu.region, 'eu');
    const asia = await from(proxy, '133.11.0.1', '/');
    assert.equal(asia.location, 'http://asia.example.test/');
    // A region that cannot serve is not redirected to.
    await b.asia.stop();
    await waitFor(() => gslbStatus(proxy).regions['asia']?.usable === false, 5000, 'asia down');
    const moved = await from(proxy, '133.11.0.1', '/');
    assert.equal(moved.status, 307);
    assert.notEqual(moved.region, 'asia');
    assert.equal(b.eu.requests.filter((r) => !isHealthCheck(r)).length, 0, 'redirect mode forwards nothing');
  });

  it('ranks by measured round trip in latency mode', async (t) => {
    // us answers its health checks slowly, eu and asia at once: a US client goes to the faster eu or asia.
    const slow = (name: string): Handler => (req, res) => {
      const delay = name === 'us' ? 60 : 0;
      setTimeout(() => {
        res.writeHead(200, { 'content-length': Buffer.byteLength(name) });
        res.end(name);
      }, delay);
      req.resume();
    };
    const b = await regionBackends(t, slow);
    const proxy = await startProxy(t, gslbConfig(b, { ranking: 'latency', regions: {
      eu: { latitude: 50.11, longitude: 8.68, upstream: 'eu' },
      us: { latitude: 38.95, longitude: -77.45, upstream: 'us' },
      asia: { latitude: 1.35, longitude: 103.82, upstream: 'asia', bias: 1000 },
    } }));
    await waitFor(() => (proxy.gatehouse.status() as { gslb: { global: { regions: Record<string, { rtt_ms?: number }> } } }).gslb.global.regions['us']?.rtt_ms !== undefined, 5000, 'round trips measured');
    await waitFor(async () => (await from(proxy, '8.8.8.8')).body === 'eu', 5000, 'the US client sent to the fastest region');
  });

  it('names the region in the JSON access log', async (t) => {
    const b = await regionBackends(t);
    const dir = mkdtempSync(join(tmpdir(), 'gslb-log-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'access.log');
    const proxy = await startProxy(t, { ...gslbConfig(b), access_log: { path, format: 'json' } });
    await from(proxy, '165.21.1.1');
    await waitFor(() => {
      try {
        return readFileSync(path, 'utf8').includes('"region":"asia"');
      } catch {
        return false;
      }
    }, 5000, 'the access log line');
    const line = JSON.parse(readFileSync(path, 'utf8').trim().split('\n')[0] as string) as Record<string, unknown>;
    assert.equal(line['region'], 'asia');
    assert.equal(line['client'], '165.21.1.1');
  });

  it('reads a configured MMDB file, and again when it changes', async (t) => {
    const b = await regionBackends(t);
    const dir = mkdtempSync(join(tmpdir(), 'gslb-db-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const require = createRequire(import.meta.url);
    const both = require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
    const ipv4Only = require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country-ipv4.mmdb');
    const database = join(dir, 'geo.mmdb');
    copyFileSync(both, database);
    const proxy = await startProxy(t, gslbConfig(b, { database }));
    // 2a00:1450:4001::1 is in Ireland: eu.
    assert.equal((await from(proxy, '2a00:1450:4001::1')).body, 'eu');
    // Replaced (as a download script would: a new file renamed over it) by a database without IPv6.
    copyFileSync(ipv4Only, join(dir, 'next.mmdb'));
    renameSync(join(dir, 'next.mmdb'), database);
    await waitFor(async () => (await from(proxy, '2a00:1450:4001::1')).body === 'us', 10_000, 'the new database (IPv6 unknown: default region)');
    assert.equal((await from(proxy, '85.214.0.1')).body, 'eu');
  });

  it('tunnels a WebSocket to the chosen region', async (t) => {
    const regions: Record<string, Restartable> = {};
    for (const name of ['eu', 'us', 'asia']) {
      const backend = await startBackend(t, (_req, res) => res.end(name));
      const wss = new WebSocketServer({ server: backend.server });
      wss.on('connection', (socket) => {
        socket.send(`hello from ${name}`);
        socket.on('close', () => {});
      });
      t.after(() => {
        for (const client of wss.clients) client.terminate();
        wss.close();
      });
      regions[name] = { url: backend.url } as Restartable;
    }
    const proxy = await startProxy(t, gslbConfig(regions as unknown as Regions, {}, false));
    const socket = new WebSocket(`ws://127.0.0.1:${proxy.port}/chat`, { headers: { 'x-forwarded-for': '133.11.0.1' } });
    const upgraded = once(socket, 'upgrade') as Promise<[{ headers: Record<string, string | undefined> }]>;
    const [message] = (await once(socket, 'message')) as [Buffer];
    const [upgrade] = await upgraded;
    assert.equal(upgrade.headers['x-gatehouse-region'], 'asia', 'the 101 names the region, as every answer on the route does');
    assert.equal(message.toString(), 'hello from asia');
    // Closed before the backends' after hooks, which wait for their connections.
    socket.terminate();
    await once(socket, 'close');
  });
});
