// Result tables for the terminal and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProxyName } from './options.ts';
import type { Scenario } from './scenarios.ts';
import type { WrkResult } from './wrk.ts';

/** Busy % of the proxy's core and of the load core (backend + wrk) during the measured run. */
export interface CoreUsage {
  proxyCore: number | null;
  loadCore: number | null;
}

export type Outcome = { ok: true; wrk: WrkResult; cpu: CoreUsage } | { ok: false; error: string };

/** Above this the load core, not the proxy, is likely the bottleneck. */
const LOAD_CORE_SATURATED = 95;

export interface ScenarioReport {
  scenario: Scenario;
  results: Map<ProxyName, Outcome>;
}

function ratio(value: number, reference: Outcome | undefined): string {
  if (reference === undefined || !reference.ok || reference.wrk.requestsPerSec === 0) return 'n/a';
  return `${(value / reference.wrk.requestsPerSec).toFixed(2)}x`;
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;
const pct = (value: number | null): string => (value === null ? '?' : `${value}%`);

function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatScenario(report: ScenarioReport, proxies: readonly ProxyName[]): string {
  const { scenario, results } = report;
  const nginx = results.get('nginx');
  const gatehouse = results.get('gatehouse');
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const proxy of proxies) {
    const outcome = results.get(proxy);
    if (outcome === undefined) continue;
    if (!outcome.ok) {
      rows.push([proxy, 'failed', '-', '-', '-', '-', '-']);
      notes.push(`${proxy}: ${outcome.error}`);
      continue;
    }
    const { requestsPerSec, p50Ms, p99Ms, socketErrors, non2xx3xx } = outcome.wrk;
    rows.push([
      proxy,
      requestsPerSec.toFixed(0),
      ms(p50Ms),
      ms(p99Ms),
      ratio(requestsPerSec, nginx),
      ratio(requestsPerSec, gatehouse),
      `${pct(outcome.cpu.proxyCore)} / ${pct(outcome.cpu.loadCore)}`,
    ]);
    const { proxyCore, loadCore } = outcome.cpu;
    if (loadCore !== null && loadCore >= LOAD_CORE_SATURATED && (proxyCore === null || proxyCore < LOAD_CORE_SATURATED)) {
      notes.push(`${proxy}: load core saturated (${loadCore}%) while the proxy core was at ${pct(proxyCore)}: req/s is a lower bound`);
    }
    if (socketErrors > 0 || non2xx3xx > 0) {
      notes.push(`${proxy}: ${non2xx3xx} non-2xx/3xx responses, ${socketErrors} socket errors (req/s not comparable)`);
    }
  }
  const title = `${scenario.label}: GET ${scenario.path}, wrk -t${scenario.threads} -c${scenario.connections}`;
  const header = ['proxy', 'req/s', 'p50', 'p99', 'vs nginx', 'vs gatehouse', 'cpu proxy/load'];
  const table = renderTable(header, rows);
  return [title, table, ...notes.map((n) => `  ! ${n}`)].join('\n');
}

export interface JsonReport {
  generatedAt: string;
  environment: Record<string, string | number | boolean>;
  durationPerRun: string;
  warmupSeconds: number;
  scenarios: Array<{
    name: string;
    path: string;
    bodyBytes: number;
    threads: number;
    connections: number;
    results: Array<{ proxy: ProxyName } & Outcome>;
  }>;
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
      path: scenario.path,
      bodyBytes: scenario.bodyBytes,
      threads: scenario.threads,
      connections: scenario.connections,
      results: [...results].map(([proxy, outcome]) => ({ proxy, ...outcome })),
    })),
  };
}

export function writeJson(path: string, report: JsonReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
