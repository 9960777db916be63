// Running h2load (nghttp2) and parsing its text output and its per-request log.
//
// Runs are count-based (-n), not timed (-D): a timed run stops with every stream still open
// reset, which is not what is measured here (and, with -c50 -m10, 500 streams at once wedged
// Gatehouse in testing). The harness derives the count from the warm-up's rate.
import { readFileSync } from 'node:fs';
import { runToEnd } from './children.ts';
import { percentileOf, type LoadResult } from './load-result.ts';
import { pinned } from './tools.ts';

export interface H2loadRun {
  h2load: string;
  taskset: string | undefined;
  core: number;
  url: string;
  /** -c: connections. */
  connections: number;
  /** -m: concurrent streams per connection. */
  streams: number;
  /** -n: requests in all. */
  requests: number;
  /** --log-file: one line per request, for the percentiles. */
  logFile: string;
  /** The run is stopped (and fails) after this long. */
  timeoutSeconds: number;
}

export interface H2loadResult extends LoadResult {
  /** The ALPN protocol h2load reported ("h2"). */
  protocol: string;
  /** Wall time of the run in seconds. */
  seconds: number;
}

const UNITS_SECONDS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

export function h2loadArgs(run: H2loadRun): string[] {
  return ['-c', String(run.connections), '-m', String(run.streams), '-n', String(run.requests), '--log-file', run.logFile, run.url];
}

/** p50 and p99 in ms from h2load's --log-file (start µs, status, duration µs; tab-separated). */
export function percentilesFromLog(log: string): { p50Ms: number; p99Ms: number } {
  const durations: number[] = [];
  for (const line of log.split('\n')) {
    const [, status, micros] = line.split('\t');
    if (micros === undefined || Number(status) < 0) continue; // -1: the request failed
    durations.push(Number(micros));
  }
  if (durations.length === 0) throw new Error('h2load log has no completed requests');
  durations.sort((a, b) => a - b);
  const at = (pct: number): number => (percentileOf(durations, pct) ?? 0) / 1000;
  return { p50Ms: at(50), p99Ms: at(99) };
}

export function parseH2loadOutput(output: string, log: string): H2loadResult {
  const finished = /^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req\/s/m.exec(output);
  if (!finished?.[1] || !finished[2] || !finished[3]) throw new Error(`could not find "finished in ..., N req/s" in h2load output:\n${output}`);
  const counts = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(output);
  if (!counts) throw new Error(`could not find the "requests:" line in h2load output:\n${output}`);
  const [total, , done, succeeded, , errored] = counts.slice(1).map(Number) as [number, number, number, number, number, number];
  const statuses = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(output);
  const protocol = /^Application protocol: (\S+)/m.exec(output)?.[1] ?? 'none';
  return {
    requestsPerSec: Number(finished[3]),
    ...percentilesFromLog(log),
    requests: succeeded,
    // Requests never done count as lost, like the errored ones (network errors, resets, timeouts).
    socketErrors: errored + (total - done),
    non2xx3xx: statuses ? Number(statuses[3]) + Number(statuses[4]) : 0,
    protocol,
    seconds: Number(finished[1]) * (UNITS_SECONDS[finished[2]] ?? 1),
  };
}

export async function runH2load(run: H2loadRun): Promise<H2loadResult> {
  const { command, args } = pinned(run.taskset, run.core, run.h2load, h2loadArgs(run));
  const timeout = `h2load did not finish ${run.requests} requests within ${run.timeoutSeconds} s`;
  const output = await runToEnd('h2load', command, args, run.timeoutSeconds * 1000, timeout);
  const result = parseH2loadOutput(output, readFileSync(run.logFile, 'utf8'));
  if (result.protocol !== 'h2') throw new Error(`h2load negotiated "${result.protocol}", not h2 (ALPN)`);
  return result;
}
