// Command-line / environment options for `npm run bench`.
import { parseArgs } from 'node:util';

export const PROXY_NAMES = [
  'gatehouse',
  'gatehouse-nolog',
  'gatehouse-metrics',
  'gatehouse-gslb',
  'thin-undici',
  'thin-agent',
  'node-http-proxy',
  'fastify-http-proxy',
  'nginx',
  'varnish',
  'caddy',
  'node-static',
  'tcp-relay',
  'tcp-relay-static',
  'gatehouse-tls',
  'thin-undici-tls',
  'nginx-tls',
  'gatehouse-1w',
  'gatehouse-2w',
  'gatehouse-2w-limited',
  'gatehouse-limits',
  'gatehouse-limits-redis',
  'fastify-cluster-2',
  'nginx-2w',
] as const;
export type ProxyName = (typeof PROXY_NAMES)[number];

export const SCENARIO_NAMES = ['small', 'medium', 'large', 'cache-hit', 'gzip', 'https-small', 'h2', 'handshake', 'tls-idle-memory', 'multicore', 'limits'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface BenchOptions {
  /** wrk duration string, e.g. "10s". */
  duration: string;
  durationSeconds: number;
  proxies: ProxyName[];
  scenarios: ScenarioName[];
}

const USAGE = `usage: npm run bench -- [--duration 10s] [--only gatehouse,nginx] [--scenario small,https-small,h2,multicore]
  env: BENCH_DURATION, BENCH_ONLY, BENCH_SCENARIO
  proxies:   ${PROXY_NAMES.join(', ')}
  scenarios: ${SCENARIO_NAMES.join(', ')}`;

export class UsageError extends Error {
  constructor(message: string) {
    super(`${message}\n${USAGE}`);
    this.name = 'UsageError';
  }
}

function parseDurationSeconds(value: string): number {
  const match = /^(\d+)(s|m)?$/.exec(value);
  if (!match) throw new UsageError(`invalid --duration "${value}" (expected e.g. 10s, 1m)`);
  const amount = Number(match[1]);
  const seconds = match[2] === 'm' ? amount * 60 : amount;
  if (seconds < 1) throw new UsageError('--duration must be at least 1s');
  return seconds;
}

function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const result: T[] = [];
  for (const item of items) {
    const found = allowed.find((name) => name === item);
    if (found === undefined) throw new UsageError(`unknown ${what} "${item}"`);
    if (!result.includes(found)) result.push(found);
  }
  if (result.length === 0) throw new UsageError(`empty ${what} list`);
  return result;
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        only: { type: 'string' },
        scenario: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const values = parseFlags(argv);
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const duration = values.duration ?? env['BENCH_DURATION'] ?? '10s';
  const only = values.only ?? env['BENCH_ONLY'];
  const scenario = values.scenario ?? env['BENCH_SCENARIO'];
  // Keep the proxies in the canonical order whatever order --only lists them in.
  const selected = only === undefined ? [...PROXY_NAMES] : parseList(only, PROXY_NAMES, 'proxy');
  const scenarios = scenario === undefined ? [...SCENARIO_NAMES] : parseList(scenario, SCENARIO_NAMES, 'scenario');
  return {
    duration: /^\d+$/.test(duration) ? `${duration}s` : duration,
    durationSeconds: parseDurationSeconds(duration),
    proxies: PROXY_NAMES.filter((name) => selected.includes(name)),
    scenarios: SCENARIO_NAMES.filter((name) => scenarios.includes(name)),
  };
}
