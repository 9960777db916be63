// What a hit from the cache's Redis tier costs over a hit from the instance's own memory
// (issue 20: < 1 ms at p99 on loopback). One redis-server, one backend, two Gatehouse instances
// sharing a `type: redis` store: A fills it; B's memory tier is too small to keep anything, so
// every hit on B is an L2 hit (one HGETALL); A's hits are L1 hits. Requests are sequential on one
// keep-alive connection each, so the figures are latencies, not throughput.
// Usage: node bench/redis-cache-latency.ts [REQUESTS]   (needs redis-server; docs/scaling.md)
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Agent, request } from 'undici';
import { configFromObject } from '../src/config/load.ts';
import { Gatehouse } from '../src/gatehouse.ts';
import { percentileOf } from './lib/load-result.ts';
import { freePort } from './lib/ports.ts';

const count = Number(process.argv[2] ?? 5000);
const BODY = Buffer.alloc(100, 'c');

const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
const backend: Server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' });
  res.end(BODY);
});
await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;

const instance = (l1Bytes: string): Promise<Gatehouse> =>
  Gatehouse.start(
    configFromObject({
      listen: [{ address: '127.0.0.1:0' }],
      access_log: { enabled: false },
      upstreams: { app: { servers: [{ url: origin }] } },
      routes: [{ match: {}, upstream: 'app', cache: { enabled: true, store: 'shared' } }],
      cache: { stores: { shared: { type: 'redis', max_size: l1Bytes } } },
      state: { redis: { url: `redis://127.0.0.1:${redisPort}`, key_prefix: 'bench-latency:' } },
    }),
    { logger: pino({ level: 'silent' }) },
  );

const a = await instance('64mb');
// A memory tier of one byte keeps nothing: every hit comes from Redis.
const b = await instance('1');

/** Latencies (ms) of `n` sequential GETs, checking each is a hit. */
async function measure(gatehouse: Gatehouse, n: number): Promise<number[]> {
  const dispatcher = new Agent({ connections: 1, pipelining: 1 });
  const url = `http://127.0.0.1:${gatehouse.addresses[0]?.port}/cache/small`;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await request(url, { dispatcher });
    await res.body.arrayBuffer();
    out.push(performance.now() - started);
    const status = String(res.headers['cache-status'] ?? '');
    if (i > 0 && !status.includes('hit')) throw new Error(`not a hit: ${status}`);
  }
  await dispatcher.close();
  return out;
}

const percentile = (sorted: readonly number[], p: number): number => percentileOf(sorted, p) ?? NaN;

try {
  // Fill through A (and warm both paths up).
  await measure(a, 200);
  await measure(b, 200);
  const l1 = (await measure(a, count)).sort((x, y) => x - y);
  const l2 = (await measure(b, count)).sort((x, y) => x - y);
  const row = (name: string, s: number[]): string => `${name}  p50 ${percentile(s, 50).toFixed(3)} ms  p99 ${percentile(s, 99).toFixed(3)} ms`;
  console.log(`${count} sequential hits each, 100 B body, loopback`);
  console.log(row('L1 hit (memory)', l1));
  console.log(row('L2 hit (Redis) ', l2));
  const extra = percentile(l2, 99) - percentile(l1, 99);
  console.log(`L2 over L1 at p99: ${extra.toFixed(3)} ms (target < 1 ms: ${extra < 1 ? 'met' : 'NOT met'})`);
} finally {
  await a.stop(0);
  await b.stop(0);
  backend.close();
  redis.kill('SIGKILL');
}
