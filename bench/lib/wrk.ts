// Running wrk and parsing its text output (`--latency` for percentiles).
import { runToEnd } from './children.ts';
import type { LoadResult } from './load-result.ts';
import { pinned } from './tools.ts';

export type WrkResult = LoadResult;

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  const factor = TIME_UNITS_MS[unit];
  if (factor === undefined) throw new Error(`unknown wrk time unit "${unit}"`);
  return Number(value) * factor;
}

function percentile(output: string, pct: number): number {
  const match = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(output);
  if (!match?.[1] || !match[2]) throw new Error(`wrk output has no ${pct}% latency (was --latency passed?)`);
  return toMs(match[1], match[2]);
}

export function parseWrkOutput(output: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  if (!rps?.[1]) throw new Error(`could not find Requests/sec in wrk output:\n${output}`);
  const requests = /^\s*(\d+) requests in /m.exec(output);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1, 5).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    requestsPerSec: Number(rps[1]),
    p50Ms: percentile(output, 50),
    p99Ms: percentile(output, 99),
    requests: Number(requests?.[1] ?? 0),
    socketErrors,
    non2xx3xx: Number(non2xx?.[1] ?? 0),
  };
}

export interface WrkRun {
  wrk: string;
  taskset: string | undefined;
  core: number;
  url: string;
  threads: number;
  connections: number;
  /** Request headers, "Name: value". */
  headers: readonly string[];
  /** wrk duration string, e.g. "10s". */
  duration: string;
  durationSeconds: number;
}

export function wrkArgs(run: WrkRun): string[] {
  const headers = run.headers.flatMap((h) => ['-H', h]);
  return [`-t${run.threads}`, `-c${run.connections}`, `-d${run.duration}`, '--latency', ...headers, run.url];
}

export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const { command, args } = pinned(run.taskset, run.core, run.wrk, wrkArgs(run));
  return parseWrkOutput(await runToEnd('wrk', command, args, (run.durationSeconds + 15) * 1000));
}
