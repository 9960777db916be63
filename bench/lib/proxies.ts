// The proxies under test and how to launch each one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnChild, stopChild } from './children.ts';
import { HOST } from './ports.ts';
import { hasHttp2Directive, nginxStaticConfig, nginxVersion, prepareNginx, prepareNginxWith } from './nginx.ts';
import type { NginxSetup } from './nginx.ts';
import type { ProxyName, ScenarioName } from './options.ts';
import { SMALL_PATH, smallBody } from './payloads.ts';
import { GZIP_LEVEL, HTTP_SCENARIOS, MULTICORE_SCENARIOS, PLAIN_SCENARIOS, TLS_SCENARIOS } from './scenarios.ts';
import type { TlsFiles } from './tls-files.ts';
import { prepareVarnish } from './varnish.ts';
import { prepareCaddy } from './caddy.ts';
import { EXAMPLE_REGIONS } from './gslb-example.ts';

/** Idle client connections are kept this long by the TLS peers, so that tls-idle-memory's stay open. */
export const TLS_KEEPALIVE_SECONDS = 300;

export interface LaunchContext {
  /** Repository root (cwd of every child). */
  root: string;
  /** Node 24 binary. */
  node: string;
  nginx: string | undefined;
  varnishd: string | undefined;
  caddy: string | undefined;
  /** gatehouse-limits-redis's own Redis. */
  redisServer: string | undefined;
  /** The backend this proxy forwards to: the node backend, or for the unpinned (multicore) peers the nginx one. */
  backendPort: number;
  /** The run's certificate and OpenSSL configuration (made only when a TLS peer is selected). */
  tls: TlsFiles | undefined;
}

export interface Launch {
  command: string;
  args: string[];
  /** Environment variables added to the harness's own. */
  env?: Record<string, string>;
  /** Extra log files (besides the child's stderr) worth showing on failure. */
  logFiles: string[];
  /**
   * Before polling the port, wait until the child's stderr has a line matching this: for a proxy
   * of several workers, the line saying that all of them listen.
   */
  readyLine?: RegExp;
  cleanup(): void;
}

export interface ProxySpec {
  name: ProxyName;
  describe: string;
  /** The scenarios it can run: all for the caching, compressing peers; plain forwarding for the others. */
  scenarios: readonly ScenarioName[];
  /** http, or https for the TLS peers (readiness probe and answer checks). */
  scheme: 'http' | 'https';
  /**
   * true: started on the proxy core, forwarding to the node backend. false (the multicore peers):
   * started unpinned, forwarding to the unpinned nginx backend (startStaticBackend).
   */
  pinned: boolean;
  launch(ctx: LaunchContext, port: number): Launch;
}

function nodeScript(ctx: LaunchContext, script: string, extraArgs: string[]): Launch {
  return { command: ctx.node, args: [join(ctx.root, script), ...extraArgs], logFiles: [], cleanup: () => {} };
}

function requireTls(ctx: LaunchContext): TlsFiles {
  if (ctx.tls === undefined) throw new Error('no TLS certificate was made for this run');
  return ctx.tls;
}

/** A peer script's arguments: where it listens and the backend it forwards to. */
function peerArgs(ctx: LaunchContext, port: number): string[] {
  return ['--port', String(port), '--target', `http://${HOST}:${ctx.backendPort}`];
}

function peerScript(script: string, ...extra: string[]): (ctx: LaunchContext, port: number) => Launch {
  return (ctx, port) => nodeScript(ctx, script, [...peerArgs(ctx, port), ...extra]);
}

/**
 * Gatehouse's configuration: /cache/ cached (memory store, the default), /gzip/ compressed at the
 * level the other peers use, everything else forwarded plainly (the small and large scenarios,
 * as with `gatehouse proxy`). The access log is on (stdout, to /dev/null), as by default, unless
 * `accessLog` is false (the gatehouse-nolog peer). With `tls` (gatehouse-tls) the listener serves
 * the run's certificate, HTTP/2 by ALPN as by default, and keeps idle connections
 * TLS_KEEPALIVE_SECONDS; everything else is the same, so that its figures compare with gatehouse's.
 * With `metrics` (gatehouse-metrics) an admin listener on a free loopback port turns /metrics on,
 * as in production; without one (every other peer) metrics are off. With `gslb` (gatehouse-gslb)
 * the catch-all route goes through a gslb block of three regions (each its own upstream on the
 * one backend): wrk's client, 127.0.0.1, is a location-less address, so each request looks it up
 * (a cached miss) and takes the default region.
 */
export function gatehouseConfig(port: number, backendPort: number, options: GatehouseBenchOptions = {}): string {
  const { accessLog = true, tls, workers, rateLimited = false, redisUrl, metrics = false, gslb = false } = options;
  const listen =
    tls === undefined
      ? `listen: [{ address: "${HOST}:${port}" }]\n`
      : `listen: [{ address: "${HOST}:${port}", tls: { certificates: [{ cert: "${tls.cert}", key: "${tls.key}" }] } }]\n` +
        `limits: { keepalive_timeout: ${TLS_KEEPALIVE_SECONDS}s }\n`;
  const threads = workers === undefined ? '' : `workers: ${workers}\n`;
  const limits = rateLimited ? `, rate_limits: [${NEVER_REFUSING_LIMIT}]` : '';
  const state = redisUrl === undefined ? '' : `state: { redis: { url: "${redisUrl}" } }\n`;
  const admin = metrics ? `admin: { address: "${HOST}:0", metrics: true }\n` : '';
  const backend = `{ servers: [{ url: "http://${HOST}:${backendPort}" }] }`;
  // The example's regions (bench/lib/gslb-example.ts), each its own upstream on the one backend.
  const regions = Object.entries(EXAMPLE_REGIONS);
  const gslbBlock = gslb
    ? regions.map(([name]) => `  ${name}: ${backend}\n`).join('') +
      'gslb:\n  global:\n    default_region: us\n    regions:\n' +
      regions.map(([name, r]) => `      ${name}: { latitude: ${r.latitude}, longitude: ${r.longitude}, upstream: ${name} }\n`).join('')
    : '';
  const last = gslb ? '{ match: {}, gslb: global }' : `{ match: {}, upstream: backend${limits} }`;
  return `# generated by bench/lib/proxies.ts
${listen}${threads}${state}${admin}${accessLog ? '' : 'access_log: { enabled: false }\n'}upstreams:
  backend: ${backend}
${gslbBlock}compress: { level: { gzip: ${GZIP_LEVEL} } }
routes:
  - { match: { path_prefix: /cache }, upstream: backend, cache: true }
  - { match: { path_prefix: /gzip }, upstream: backend, compress: true }
  - ${last}
`;
}

/** How a Gatehouse peer differs from the plain `gatehouse` one (see gatehouseConfig). */
export interface GatehouseBenchOptions {
  readonly accessLog?: boolean;
  readonly tls?: TlsFiles;
  /** `workers:` (the multicore peers; unset: the default, one). */
  readonly workers?: number;
  /** The never-refusing rate limit on the catch-all route (gatehouse-2w-limited, the limits scenario). */
  readonly rateLimited?: boolean;
  /** `state.redis` there: the limit is kept in this Redis (gatehouse-limits-redis). */
  readonly redisUrl?: string;
  readonly metrics?: boolean;
  readonly gslb?: boolean;
}

/**
 * gatehouse-2w-limited's limit on the forwarding route: per client address (the default key, so
 * every wrk connection shares one bucket, the most contended case), far above any rate reached
 * here, so it never refuses: what the shared limit store costs, not what refusing does.
 */
export const NEVER_REFUSING_LIMIT = '{ name: all, rate: 1000000/s, burst: 1000000 }';

function gatehouseLaunch(ctx: LaunchContext, port: number, options: GatehouseBenchOptions = {}): Launch {
  const { tls, workers = 1 } = options;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, gatehouseConfig(port, ctx.backendPort, options));
  return {
    command: ctx.node,
    args: [join(ctx.root, 'src/cli.ts'), 'run', '--config', file],
    // Gatehouse has no setting for session tickets: Node's OpenSSL reads them off from this file.
    ...(tls === undefined ? {} : { env: { OPENSSL_CONF: tls.opensslConf } }),
    // With workers, the primary logs this once every worker serves and it has closed its own check
    // of the port (the port answers from the first worker on; see service.ts).
    ...(workers < 2 ? {} : { readyLine: /"gatehouse started"/ }),
    logFiles: [],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * gatehouse-limits-redis: a redis-server of its own (on the load core's side, not pinned with the
 * proxy), started before the proxy and stopped with it; the proxy's limit lives there.
 */
function gatehouseRedisLaunch(ctx: LaunchContext, port: number): Launch {
  if (ctx.redisServer === undefined) throw new Error('redis-server not found');
  const redisPort = freePortSync(ctx.node);
  // A tracked child: stopped with the harness too if the run is interrupted.
  const redis = spawnChild('redis-server', ctx.redisServer, ['--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const launch = gatehouseLaunch(ctx, port, { rateLimited: true, redisUrl: `redis://${HOST}:${redisPort}` });
  return {
    ...launch,
    cleanup: () => {
      void stopChild(redis, 0);
      launch.cleanup();
    },
  };
}

/** A loopback port that was free a moment ago, found synchronously (a child binds port 0 and says which). */
function freePortSync(node: string): number {
  const script = `const s = require('node:net').createServer().listen(0, '${HOST}', () => { console.log(s.address().port); s.close(); });`;
  const found = spawnSync(node, ['-e', script], { encoding: 'utf8' });
  const port = Number(found.stdout.trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no free port: ${found.stderr}`);
  return port;
}

/** `node bench/peers/cluster.ts --workers N SCRIPT --port … --target …`: N copies of a peer under node:cluster. */
function clusterOf(script: string, workers: number): (ctx: LaunchContext, port: number) => Launch {
  return (ctx, port) => ({
    ...nodeScript(ctx, 'bench/peers/cluster.ts', ['--workers', String(workers), join(ctx.root, script), ...peerArgs(ctx, port)]),
    readyLine: new RegExp(`^cluster: ${workers} workers listening`, 'm'),
  });
}

/** nginx with `workers` worker processes, every request forwarded (nginxConfig's "/"). */
function nginxLaunch(ctx: LaunchContext, port: number, workers = 1): Launch {
  if (ctx.nginx === undefined) throw new Error('nginx not found');
  return nginxRun(ctx.nginx, prepareNginx(port, ctx.backendPort, undefined, workers));
}

/** nginx on a prepared configuration; its error log is shown on failure. */
function nginxRun(nginx: string, setup: NginxSetup): Launch {
  return { command: nginx, args: setup.args, logFiles: [setup.errorLog], cleanup: setup.cleanup };
}

/** The multicore scenario's backend: nginx, one worker, answering GET /small from memory (see nginxStaticConfig). */
export function staticBackendLaunch(nginx: string, port: number): Launch {
  return nginxRun(nginx, prepareNginxWith((prefix) => nginxStaticConfig(prefix, port, SMALL_PATH, smallBody())));
}

/** A Gatehouse peer on plain HTTP, launched with `options` (see gatehouseConfig); `pinned` false: a multicore peer. */
function gatehousePeer(name: ProxyName, describe: string, scenarios: readonly ScenarioName[], options: GatehouseBenchOptions = {}, pinned = true): ProxySpec {
  return { name, describe, scenarios, scheme: 'http', pinned, launch: (ctx, port) => gatehouseLaunch(ctx, port, options) };
}

export const PROXIES: Record<ProxyName, ProxySpec> = {
  gatehouse: gatehousePeer('gatehouse', 'node src/cli.ts run (defaults; /cache cached in memory, /gzip compressed; access log to /dev/null)', HTTP_SCENARIOS),
  'gatehouse-nolog': gatehousePeer(
    'gatehouse-nolog',
    'the same without the access log: like for like with nginx and Varnish, which log nothing here',
    ['small', 'cache-hit'],
    { accessLog: false },
  ),
  'gatehouse-metrics': gatehousePeer(
    'gatehouse-metrics',
    'the gatehouse peer with an admin listener, so /metrics on (the default there): what counting costs, against gatehouse in the same run',
    ['small', 'cache-hit'],
    { metrics: true },
  ),
  'gatehouse-gslb': gatehousePeer(
    'gatehouse-gslb',
    'the gatehouse peer with its catch-all route through a gslb block of three regions: what the region choice costs, against gatehouse in the same run',
    ['small'],
    { gslb: true },
  ),
  'thin-undici': {
    name: 'thin-undici',
    describe: 'node:http + undici Pool.stream() (the thin-proxy baseline)',
    scenarios: PLAIN_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/thin-undici.ts'),
  },
  'thin-agent': {
    name: 'thin-agent',
    describe: 'node:http + keep-alive http.Agent (transport reference)',
    scenarios: PLAIN_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/thin-agent.ts'),
  },
  'node-http-proxy': {
    name: 'node-http-proxy',
    describe: 'http-proxy with a keep-alive http.Agent',
    scenarios: PLAIN_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/http-proxy.ts'),
  },
  'fastify-http-proxy': {
    name: 'fastify-http-proxy',
    describe: 'fastify + @fastify/http-proxy, logger off',
    scenarios: PLAIN_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/fastify-proxy.ts'),
  },
  nginx: {
    name: 'nginx',
    describe: 'nginx, 1 worker, upstream keepalive 64; /cache/ proxy_cache, /gzip/ gzip',
    scenarios: HTTP_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: (ctx, port) => nginxLaunch(ctx, port),
  },
  caddy: {
    name: 'caddy',
    describe: 'caddy run, one CPU (GOMAXPROCS=1); /gzip/ encode gzip, the rest reverse_proxy (no cache)',
    scenarios: ['small', 'medium', 'large', 'gzip'],
    scheme: 'http',
    pinned: true,
    launch: (ctx, port) => {
      if (ctx.caddy === undefined) throw new Error('caddy not found');
      const setup = prepareCaddy(port, ctx.backendPort);
      return { command: ctx.caddy, args: setup.args, env: setup.env, logFiles: [], cleanup: setup.cleanup };
    },
  },
  varnish: {
    name: 'varnish',
    describe: 'varnishd -F, malloc store; /cache/ cached, /gzip/ do_gzip, the rest passed',
    scenarios: HTTP_SCENARIOS,
    scheme: 'http',
    pinned: true,
    launch: (ctx, port) => {
      if (ctx.varnishd === undefined) throw new Error('varnishd not found');
      const setup = prepareVarnish(port, ctx.backendPort);
      return { command: ctx.varnishd, args: setup.args, logFiles: [], cleanup: setup.cleanup };
    },
  },
  'tcp-relay': {
    name: 'tcp-relay',
    describe: 'node:net relay, no HTTP (socket.pipe both ways): the most a Node proxy gets per byte with a new Buffer per read, as undici reads',
    scenarios: ['large'],
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/tcp-relay.ts', '--mode', 'pipe'),
  },
  'tcp-relay-static': {
    name: 'tcp-relay-static',
    describe: 'the same relay reading the backend into one reused buffer (net onread): what reads without allocation would give',
    scenarios: ['large'],
    scheme: 'http',
    pinned: true,
    launch: peerScript('bench/peers/tcp-relay.ts', '--mode', 'static-buffer'),
  },
  'node-static': {
    name: 'node-static',
    describe: 'bare node:http answering from memory through its public API (one write per answer)',
    scenarios: ['cache-hit'],
    scheme: 'http',
    pinned: true,
    launch: (ctx, port) => nodeScript(ctx, 'bench/peers/node-static.ts', ['--port', String(port)]),
  },
  'gatehouse-tls': {
    name: 'gatehouse-tls',
    describe: 'gatehouse with a TLS listener (ECDSA P-256, HTTP/2 by ALPN; keep-alive 300s; no session tickets)',
    scenarios: TLS_SCENARIOS,
    scheme: 'https',
    pinned: true,
    launch: (ctx, port) => gatehouseLaunch(ctx, port, { tls: requireTls(ctx) }),
  },
  'thin-undici-tls': {
    name: 'thin-undici-tls',
    describe: 'thin-undici over TLS (node:https, HTTP/1.1 only; same certificate, no session tickets): the TLS ceiling of a Node proxy',
    scenarios: ['https-small'],
    scheme: 'https',
    pinned: true,
    launch: (ctx, port) => {
      const tls = requireTls(ctx);
      const launch = nodeScript(ctx, 'bench/peers/thin-undici.ts', [...peerArgs(ctx, port), '--cert', tls.cert, '--key', tls.key]);
      return { ...launch, env: { OPENSSL_CONF: tls.opensslConf } };
    },
  },
  'nginx-tls': {
    name: 'nginx-tls',
    describe: 'nginx, 1 worker, ssl + http2 on one port (ECDSA P-256; keep-alive 300s; no session tickets)',
    scenarios: TLS_SCENARIOS,
    scheme: 'https',
    pinned: true,
    launch: (ctx, port) => {
      if (ctx.nginx === undefined) throw new Error('nginx not found');
      const tls = requireTls(ctx);
      const http2Directive = hasHttp2Directive(nginxVersion(ctx.nginx));
      const setup = prepareNginx(port, ctx.backendPort, { cert: tls.cert, key: tls.key, http2Directive, keepaliveSeconds: TLS_KEEPALIVE_SECONDS });
      return { ...nginxRun(ctx.nginx, setup), env: { OPENSSL_CONF: tls.opensslConf } };
    },
  },
  'gatehouse-1w': gatehousePeer('gatehouse-1w', 'gatehouse, workers: 1 (served in the main thread), unpinned', MULTICORE_SCENARIOS, { workers: 1 }, false),
  'gatehouse-2w': gatehousePeer('gatehouse-2w', 'gatehouse, workers: 2 (two threads, SO_REUSEPORT), unpinned', MULTICORE_SCENARIOS, { workers: 2 }, false),
  'gatehouse-2w-limited': gatehousePeer(
    'gatehouse-2w-limited',
    `gatehouse, workers: 2, with a per-client rate limit that never refuses (${NEVER_REFUSING_LIMIT}), unpinned`,
    MULTICORE_SCENARIOS,
    { workers: 2, rateLimited: true },
    false,
  ),
  'gatehouse-limits': gatehousePeer(
    'gatehouse-limits',
    `gatehouse with a per-client rate limit that never refuses (${NEVER_REFUSING_LIMIT}), in memory`,
    ['limits'],
    { rateLimited: true },
  ),
  'gatehouse-limits-redis': {
    name: 'gatehouse-limits-redis',
    describe: 'the same limit kept in Redis (state.redis; a redis-server of its own, unpinned): reservations, the local fast path',
    scenarios: ['limits'],
    scheme: 'http',
    pinned: true,
    launch: gatehouseRedisLaunch,
  },
  'fastify-cluster-2': {
    name: 'fastify-cluster-2',
    describe: 'bench/peers/fastify-proxy.ts under node:cluster, 2 worker processes (the primary hands out connections), unpinned',
    scenarios: MULTICORE_SCENARIOS,
    scheme: 'http',
    pinned: false,
    launch: clusterOf('bench/peers/fastify-proxy.ts', 2),
  },
  'nginx-2w': {
    name: 'nginx-2w',
    describe: 'nginx, 2 workers, upstream keepalive 64, unpinned',
    scenarios: MULTICORE_SCENARIOS,
    scheme: 'http',
    pinned: false,
    launch: (ctx, port) => nginxLaunch(ctx, port, 2),
  },
};
