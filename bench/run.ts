// Gatehouse benchmark harness: `npm run bench -- [--duration 10s] [--only a,b] [--scenario small,https-small,h2,...]`.
// One backend (core 1), one proxy at a time (core 0), the load tool on core 1; then the multicore
// group: nginx as the backend, the proxy and wrk, nothing pinned. See docs/benchmarks.md.
import { join, resolve } from 'node:path';
import { killAllChildrenSync, stopAllChildren } from './lib/children.ts';
import { describeEnvironment, nodeBinary } from './lib/environment.ts';
import { measure } from './lib/measure.ts';
import type { MeasureContext } from './lib/measure.ts';
import { parseOptions } from './lib/options.ts';
import type { BenchOptions, ProxyName } from './lib/options.ts';
import { LARGE_BYTES, LARGE_PATH, SMALL_BYTES, SMALL_PATH } from './lib/payloads.ts';
import { freePort } from './lib/ports.ts';
import { expectBody } from './lib/probe.ts';
import { PROXIES, staticBackendLaunch } from './lib/proxies.ts';
import type { Launch, LaunchContext } from './lib/proxies.ts';
import { formatScenario, toJson, writeJson } from './lib/report.ts';
import type { Outcome, ScenarioReport } from './lib/report.ts';
import { SCENARIOS, WARMUP_SECONDS } from './lib/scenarios.ts';
import type { Scenario, ScenarioKind } from './lib/scenarios.ts';
import { startService, StartError } from './lib/service.ts';
import type { Service } from './lib/service.ts';
import { evaluateTargets, formatTargets } from './lib/targets.ts';
import { makeTlsFiles } from './lib/tls-files.ts';
import type { TlsFiles } from './lib/tls-files.ts';
import { LOAD_CORE, locateTools, PROXY_CORE } from './lib/tools.ts';
import type { Tools } from './lib/tools.ts';

const ROOT = resolve(import.meta.dirname, '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const LOG_DIR = join(RESULTS_DIR, 'logs');
const READY_TIMEOUT_MS = 10_000;

/** Set on Ctrl-C / SIGTERM: finish nothing new, just clean up. */
let interrupted = false;

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The (proxy, scenario) pairs this run measures. */
function plannedRuns(options: BenchOptions): Array<{ proxy: ProxyName; scenario: Scenario }> {
  return options.proxies.flatMap((proxy) =>
    options.scenarios.filter((s) => PROXIES[proxy].scenarios.includes(s)).map((s) => ({ proxy, scenario: SCENARIOS[s] })),
  );
}

/** Exit early with a clear message when a required tool is missing. */
function checkTools(tools: Tools, options: BenchOptions): boolean {
  const runs = plannedRuns(options);
  const kinds = new Set<ScenarioKind>(runs.map((r) => r.scenario.kind));
  const proxies = new Set(runs.map((r) => r.proxy));
  const missing: string[] = [];
  if (tools.wrk === undefined && kinds.has('wrk')) missing.push('wrk');
  if (tools.h2load === undefined && kinds.has('h2load')) missing.push('h2load');
  if (tools.openssl === undefined && runs.some((r) => r.scenario.scheme === 'https')) missing.push('openssl');
  // The multicore group's backend is nginx.
  const needsNginx = [...proxies].some((p) => p.startsWith('nginx') || !PROXIES[p].pinned);
  if (tools.nginx === undefined && needsNginx) missing.push('nginx');
  if (tools.varnishd === undefined && proxies.has('varnish')) missing.push('varnishd');
  if (tools.caddy === undefined && proxies.has('caddy')) missing.push('caddy');
  if (tools.redisServer === undefined && proxies.has('gatehouse-limits-redis')) missing.push('redis-server');
  if (missing.length > 0) {
    console.error(`error: ${missing.join(', ')} not found. Install with:\n\n    bash bench/setup.sh\n`);
    return false;
  }
  if (tools.taskset === undefined) {
    console.warn('warning: taskset not found, running UNPINNED (results will be noisier)');
  }
  return true;
}

/** The multicore group's backend: nginx answering /small from memory, one worker, not pinned. */
async function startStaticBackend(tools: Tools): Promise<Service> {
  if (tools.nginx === undefined) throw new Error('nginx not found');
  const port = await freePort();
  return startBackendService(tools, 'backend-nginx', 'nginx backend', staticBackendLaunch(tools.nginx, port), port, null, { [SMALL_PATH]: SMALL_BYTES });
}

async function startBackend(tools: Tools, node: string): Promise<Service> {
  const port = await freePort();
  const script = join(ROOT, 'bench', 'backend.ts');
  const launch = { command: node, args: [script, '--port', String(port)], logFiles: [], cleanup: () => {} };
  return startBackendService(tools, 'backend', 'backend', launch, port, LOAD_CORE, { [SMALL_PATH]: SMALL_BYTES, [LARGE_PATH]: LARGE_BYTES });
}

/**
 * A backend on plain HTTP, ready once SMALL_PATH answers, then checked to send `bodies` (bytes by
 * path; stopped if it does not); a StartError is told with its details.
 */
async function startBackendService(tools: Tools, name: string, label: string, launch: Launch, port: number, core: number | null, bodies: Record<string, number>): Promise<Service> {
  const service = await startService({
    name,
    launch,
    port,
    scheme: 'http',
    core,
    taskset: tools.taskset,
    cwd: ROOT,
    logDir: LOG_DIR,
    readyPath: SMALL_PATH,
    readyTimeoutMs: READY_TIMEOUT_MS,
  }).catch((error: unknown) => {
    throw error instanceof StartError ? new Error(`${label} failed to start: ${error.message}\n${error.details}`) : error;
  });
  try {
    for (const [path, bytes] of Object.entries(bodies)) await expectBody(service.url(path), bytes);
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}

interface BenchContext {
  options: BenchOptions;
  tools: Tools;
  launch: LaunchContext;
  measure: MeasureContext;
}

function progressLine(proxy: ProxyName, scenario: Scenario, outcome: Outcome): string {
  const head = `  ${proxy} ${scenario.name}:`;
  if (!outcome.ok) return `${head} error: ${outcome.error}`;
  if (!('load' in outcome)) {
    const { connections, rssBeforeKiB, rssAfterKiB, perConnectionKiB } = outcome.memory;
    return `${head} ${perConnectionKiB.toFixed(1)} KiB per idle connection (${connections} connections, RSS ${rssBeforeKiB} -> ${rssAfterKiB} KiB)`;
  }
  const { requestsPerSec, p50Ms, p99Ms } = outcome.load;
  const { proxyCore, loadCore, proxyCpuUsPerRequest } = outcome.cpu;
  const cores = scenario.pinned ? `proxy core ${proxyCore ?? '?'}%, load core ${loadCore ?? '?'}%` : `cores 0/1 ${proxyCore ?? '?'}% / ${loadCore ?? '?'}%`;
  return (
    `${head} ${requestsPerSec.toFixed(0)} req/s, p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms` +
    ` (cpu: ${cores}; proxy ${proxyCpuUsPerRequest?.toFixed(1) ?? '?'} µs/req)`
  );
}

/** `backendPort`: the backend this proxy forwards to (the node one, or nginx for the unpinned peers). */
async function benchProxy(ctx: BenchContext, name: ProxyName, allReports: ScenarioReport[], backendPort: number): Promise<void> {
  const spec = PROXIES[name];
  // A proxy without a cache or compression runs the plain forwarding scenarios only. Memory is
  // measured first, on the freshly started process, before any load has grown its heap.
  const memoryFirst = (r: ScenarioReport): number => (r.scenario.kind === 'idle-memory' ? 0 : 1);
  const reports = allReports.filter((r) => spec.scenarios.includes(r.scenario.name)).sort((a, b) => memoryFirst(a) - memoryFirst(b));
  if (reports.length === 0) return;
  console.log(`\n> ${name}: ${spec.describe}`);
  let service: Service;
  try {
    const port = await freePort();
    service = await startService({
      name,
      launch: spec.launch({ ...ctx.launch, backendPort }, port),
      port,
      scheme: spec.scheme,
      core: spec.pinned ? PROXY_CORE : null,
      taskset: ctx.tools.taskset,
      cwd: ROOT,
      logDir: LOG_DIR,
      readyPath: SMALL_PATH,
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
  } catch (error) {
    const reason = `failed to start: ${message(error)}`;
    console.log(`  ${name}: ${reason}`);
    if (error instanceof StartError && error.details.length > 0) console.log(error.details.replace(/^/gm, '    | '));
    for (const report of reports) report.results.set(name, { ok: false, error: reason });
    return;
  }
  try {
    for (const report of reports) {
      if (interrupted) return;
      const outcome = await measure(ctx.measure, service, report.scenario);
      if (interrupted) return;
      report.results.set(name, outcome);
      console.log(progressLine(name, report.scenario, outcome));
    }
  } finally {
    await service.stop();
  }
}

/** `proxies` one after another against the backend `start` gives, stopped after them (or on an interruption). */
async function benchGroup(ctx: BenchContext, proxies: readonly ProxyName[], reports: ScenarioReport[], start: () => Promise<Service>): Promise<void> {
  if (proxies.length === 0) return;
  const backend = await start();
  try {
    for (const name of proxies) {
      if (interrupted) return;
      await benchProxy(ctx, name, reports, backend.port);
    }
  } finally {
    await backend.stop();
  }
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`error: ${message(error)}`);
    return 2;
  }
  const tools = locateTools();
  if (!checkTools(tools, options)) return 1;
  const node = nodeBinary(ROOT);

  const runs = plannedRuns(options);
  // An idle-memory run takes about 15 s whatever the duration.
  const estimate = runs.reduce((sum, r) => sum + (r.scenario.kind === 'idle-memory' ? 15 : options.durationSeconds + WARMUP_SECONDS), 0);
  console.log(
    `Gatehouse bench: ${options.proxies.join(', ')} x ${options.scenarios.join(', ')}; ` +
      `${options.duration} per run + ${WARMUP_SECONDS}s warm-up (~${Math.ceil(estimate / 10) * 10}s of load)`,
  );
  // The pinned peers run first, with the node backend; then the multicore group, with the nginx one.
  const pinnedProxies = options.proxies.filter((p) => PROXIES[p].pinned && runs.some((r) => r.proxy === p));
  const unpinnedProxies = options.proxies.filter((p) => !PROXIES[p].pinned && runs.some((r) => r.proxy === p));
  if (pinnedProxies.length > 0) {
    console.log(`proxy on core ${PROXY_CORE}; backend and wrk on core ${LOAD_CORE}${tools.taskset ? '' : ' (UNPINNED)'}`);
  }
  if (unpinnedProxies.length > 0) console.log('multicore: proxy, nginx backend and wrk not pinned (both cores shared)');

  // One certificate for the run, served by every TLS peer.
  let tls: TlsFiles | undefined;
  if (runs.some((r) => r.scenario.scheme === 'https') && tools.openssl !== undefined) tls = makeTlsFiles(tools.openssl);
  try {
    const ctx: BenchContext = {
      options,
      tools,
      launch: { root: ROOT, node, nginx: tools.nginx, varnishd: tools.varnishd, caddy: tools.caddy, redisServer: tools.redisServer, backendPort: 0, tls },
      measure: { tools, node, root: ROOT, duration: options.duration, durationSeconds: options.durationSeconds },
    };
    const reports: ScenarioReport[] = options.scenarios.map((name) => ({ scenario: SCENARIOS[name], results: new Map() }));
    await benchGroup(ctx, pinnedProxies, reports, () => startBackend(tools, node));
    if (unpinnedProxies.length > 0 && !interrupted) {
      console.log('\n> multicore group: starting the nginx backend (1 worker, /small from memory, not pinned)');
      await benchGroup(ctx, unpinnedProxies, reports, () => startStaticBackend(tools));
    }
    if (interrupted) return 130;

    console.log('');
    for (const report of reports) console.log(`${formatScenario(report, options.proxies, reports)}\n`);
    const targets = evaluateTargets(reports);
    if (targets.length > 0) console.log(`${formatTargets(targets)}\n`);
    const jsonPath = join(RESULTS_DIR, 'latest.json');
    writeJson(
      jsonPath,
      toJson(reports, {
        environment: describeEnvironment(tools, node),
        durationPerRun: options.duration,
        warmupSeconds: WARMUP_SECONDS,
        targets: targets.map(({ target, measured, reference, ratio, met }) => ({
          measured: target.measured,
          reference: target.reference,
          atLeast: target.atLeast,
          measuredValue: measured ?? null,
          referenceValue: reference ?? null,
          ratio: ratio ?? null,
          met: met ?? null,
        })),
      }),
    );
    console.log(`results written to ${jsonPath}`);
    const anyOk = reports.some((r) => [...r.results.values()].some((o) => o.ok));
    return anyOk ? 0 : 1;
  } finally {
    tls?.cleanup();
  }
}

// Nothing may outlive the harness: Ctrl-C, kill, crash or normal exit.
process.on('exit', killAllChildrenSync);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping benchmark processes...`);
    void stopAllChildren().finally(() => process.exit(code));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await stopAllChildren();
    process.exit(1);
  },
);
