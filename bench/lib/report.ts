// Result tables for the terminal and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IdleMemoryResult } from './idle-memory.ts';
import type { LoadResult } from './load-result.ts';
import type { ProxyName, ScenarioName } from './options.ts';
import type { Scenario } from './scenarios.ts';

/** Busy % of the proxy's core and of the load core (backend + load tool) during the measured run. */
export interface CoreUsage {
  proxyCore: number | null;
  loadCore: number | null;
  /** CPU time (user + system) the proxy's processes used per completed request, in µs. */
  proxyCpuUsPerRequest: number | null;
}

export type Outcome =
  | { ok: true; tool: 'wrk' | 'h2load'; load: LoadResult; cpu: CoreUsage }
  | { ok: true; tool: 'idle-client'; memory: IdleMemoryResult }
  | { ok: false; error: string };

/** Above this the load core, not the proxy, is likely the bottleneck. */
const LOAD_CORE_SATURATED = 95;

export interface ScenarioReport {
  scenario: Scenario;
  results: Map<ProxyName, Outcome>;
}

/**
 * The figure a scenario compares: req/s, or KiB per idle connection. `perCpu`: requests per
 * second of the proxy's own CPU time instead (what one core would do if the proxy had it all).
 */
export function figureOf(outcome: Outcome | undefined, perCpu = false): number | undefined {
  if (outcome === undefined || !outcome.ok) return undefined;
  if (!('load' in outcome)) return perCpu ? undefined : outcome.memory.perConnectionKiB;
  if (!perCpu) return outcome.load.requestsPerSec;
  const us = outcome.cpu.proxyCpuUsPerRequest;
  return us === null || us <= 0 ? undefined : 1e6 / us;
}

/** The outcome of `proxy` in scenario `name`, if it ran in this run. */
export function outcomeIn(reports: readonly ScenarioReport[], name: ScenarioName, proxy: ProxyName): Outcome | undefined {
  return reports.find((r) => r.scenario.name === name)?.results.get(proxy);
}

export function ratioText(value: number, reference: number | undefined): string {
  if (reference === undefined || reference === 0) return 'n/a';
  return `${(value / reference).toFixed(2)}x`;
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;
const pct = (value: number | null): string => (value === null ? '?' : `${value}%`);
const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;

function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function title(scenario: Scenario): string {
  const target = `GET ${scenario.scheme === 'https' ? 'https://…' : ''}${scenario.path}`;
  switch (scenario.kind) {
    case 'wrk': {
      const headers = scenario.headers.map((h) => ` -H '${h}'`).join('');
      const note = scenario.fullHandshakes ? ' (one request per connection: req/s = full handshakes/s)' : '';
      const unpinned = scenario.pinned ? '' : ', proxy, backend and wrk unpinned';
      return `${scenario.label}: ${target}, wrk -t${scenario.threads} -c${scenario.connections}${headers}${note}${unpinned}`;
    }
    case 'h2load':
      return `${scenario.label}: ${target}, h2load -c${scenario.connections} -m${scenario.streams}`;
    case 'idle-memory':
      return `${scenario.label}: VmRSS of the proxy's processes before and after`;
  }
}

function formatLoad(report: ScenarioReport, proxies: readonly ProxyName[], all: readonly ScenarioReport[]): string {
  const { scenario, results } = report;
  const nginx = figureOf(results.get(scenario.references.nginx));
  const gatehouse = figureOf(results.get(scenario.references.gatehouse));
  const baselineName = scenario.httpBaseline;
  const baseline = baselineName === null ? undefined : figureOf(outcomeIn(all, baselineName, 'gatehouse'));
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const proxy of proxies) {
    const outcome = results.get(proxy);
    if (outcome === undefined) continue;
    if (!outcome.ok || !('load' in outcome)) {
      rows.push([proxy, 'failed', '-', '-', '-', '-', ...(baselineName === null ? [] : ['-']), '-', '-']);
      notes.push(`${proxy}: ${outcome.ok ? 'no load result' : outcome.error}`);
      continue;
    }
    const { requestsPerSec, p50Ms, p99Ms, socketErrors, non2xx3xx } = outcome.load;
    rows.push([
      proxy,
      requestsPerSec.toFixed(0),
      ms(p50Ms),
      ms(p99Ms),
      ratioText(requestsPerSec, nginx),
      ratioText(requestsPerSec, gatehouse),
      ...(baselineName === null ? [] : [ratioText(requestsPerSec, baseline)]),
      `${pct(outcome.cpu.proxyCore)} / ${pct(outcome.cpu.loadCore)}`,
      outcome.cpu.proxyCpuUsPerRequest === null ? '?' : outcome.cpu.proxyCpuUsPerRequest.toFixed(1),
    ]);
    const { proxyCore, loadCore } = outcome.cpu;
    if (scenario.pinned && loadCore !== null && loadCore >= LOAD_CORE_SATURATED && (proxyCore === null || proxyCore < LOAD_CORE_SATURATED)) {
      notes.push(`${proxy}: load core saturated (${loadCore}%) while the proxy core was at ${pct(proxyCore)}: req/s is a lower bound`);
    }
    if (socketErrors > 0 || non2xx3xx > 0) {
      notes.push(`${proxy}: ${non2xx3xx} non-2xx/3xx responses, ${socketErrors} socket errors (req/s not comparable)`);
    }
  }
  if (baselineName !== null && baseline === undefined) {
    notes.push(`vs gatehouse ${baselineName}: n/a, Gatehouse's plain-HTTP ${baselineName} did not run (add --scenario ${baselineName} and proxy gatehouse)`);
  }
  const header = [
    'proxy',
    'req/s',
    'p50',
    'p99',
    `vs ${scenario.references.nginx}`,
    `vs ${scenario.references.gatehouse}`,
    ...(baselineName === null ? [] : [`vs gatehouse ${baselineName}`]),
    // Unpinned, the two figures are cores 0 and 1, which everything shares.
    scenario.pinned ? 'cpu proxy/load' : 'cpu core 0/1',
    'proxy cpu µs/req',
  ];
  return [title(scenario), renderTable(header, rows), ...notes.map((n) => `  ! ${n}`)].join('\n');
}

function formatMemory(report: ScenarioReport, proxies: readonly ProxyName[]): string {
  const { scenario, results } = report;
  const nginx = figureOf(results.get(scenario.references.nginx));
  const gatehouse = figureOf(results.get(scenario.references.gatehouse));
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const proxy of proxies) {
    const outcome = results.get(proxy);
    if (outcome === undefined) continue;
    if (!outcome.ok || !('memory' in outcome)) {
      rows.push([proxy, 'failed', '-', '-', '-', '-', '-']);
      notes.push(`${proxy}: ${outcome.ok ? 'no memory result' : outcome.error}`);
      continue;
    }
    const { connections, rssBeforeKiB, rssAfterKiB, perConnectionKiB } = outcome.memory;
    rows.push([
      proxy,
      String(connections),
      mib(rssBeforeKiB),
      mib(rssAfterKiB),
      perConnectionKiB.toFixed(1),
      ratioText(perConnectionKiB, nginx),
      ratioText(perConnectionKiB, gatehouse),
    ]);
  }
  const header = ['proxy', 'idle conns', 'rss before', 'rss after', 'KiB/conn', `vs ${scenario.references.nginx}`, `vs ${scenario.references.gatehouse}`];
  return [title(scenario), renderTable(header, rows), ...notes.map((n) => `  ! ${n}`)].join('\n');
}

export function formatScenario(report: ScenarioReport, proxies: readonly ProxyName[], all: readonly ScenarioReport[]): string {
  return report.scenario.kind === 'idle-memory' ? formatMemory(report, proxies) : formatLoad(report, proxies, all);
}

export interface JsonReport {
  generatedAt: string;
  environment: Record<string, string | number | boolean>;
  durationPerRun: string;
  warmupSeconds: number;
  scenarios: Array<{
    name: string;
    kind: string;
    scheme: string;
    pinned: boolean;
    path: string;
    bodyBytes: number;
    threads: number;
    connections: number;
    streams: number;
    headers: readonly string[];
    results: Array<{ proxy: ProxyName } & Outcome>;
  }>;
  /** The targets (see targets.ts). */
  targets: ReadonlyArray<Record<string, unknown>>;
}

export function toJson(
  reports: readonly ScenarioReport[],
  meta: Omit<JsonReport, 'scenarios' | 'generatedAt'>,
): JsonReport {
  return {
    generatedAt: new Date().toISOString(),
    ...meta,
    scenarios: reports.map(({ scenario, results }) => ({
      name: scenario.name,
      kind: scenario.kind,
      scheme: scenario.scheme,
      pinned: scenario.pinned,
      path: scenario.path,
      bodyBytes: scenario.bodyBytes,
      threads: scenario.threads,
      connections: scenario.connections,
      streams: scenario.streams,
      headers: scenario.headers,
      results: [...results].map(([proxy, outcome]) => ({ proxy, ...outcome })),
    })),
  };
}

export function writeJson(path: string, report: JsonReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
