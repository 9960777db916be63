// The issues' targets as summary lines under the tables: each one a ratio of two figures from the
// same run, met or not. Issue 16: TLS and HTTP/2; issue 17: multi-core (the multicore scenario);
// issue 18: what /metrics costs (gatehouse-metrics against gatehouse); issue 19: what the GSLB
// region choice costs (gatehouse-gslb); issue 20: rate limits kept in Redis (the limits scenario);
// issue 21: gzip, big bodies, tail latency (p99) and cache hits against nginx, Caddy and thin peers.
import type { ProxyName, ScenarioName } from './options.ts';
import { figureOf, outcomeIn, type Outcome, type ScenarioReport } from './report.ts';

interface Figure {
  proxy: ProxyName;
  scenario: ScenarioName;
}

export interface Target {
  /** The issue that set it (the lines are grouped by issue). */
  issue: number;
  /** The scenario whose selection shows this line. */
  scenario: ScenarioName;
  measured: Figure;
  reference: Figure;
  /** The ratio measured / reference must be at least this; null: shown for information. */
  atLeast: number | null;
  unit: string;
  /**
   * Compare requests per second of the proxy's own CPU time rather than req/s: the same when the
   * proxy's core was the bottleneck and the proxy had it alone, steadier when it was not.
   */
  perCpu: boolean;
  /**
   * Compare p99 latency instead (ratio = reference / measured, so that at least 1.0 means no
   * worse than the reference).
   */
  p99?: boolean;
}

/**
 * `target` on `what` per second (req/s by default), then the same ratio per second of proxy CPU
 * time, at least `perCpuAtLeast` (null: for information; it tells a proxy that scaled poorly from
 * one that had no idle core to scale onto).
 */
function perSecond(target: Omit<Target, 'perCpu' | 'unit'>, perCpuAtLeast: number | null, what = 'requests'): Target[] {
  return [
    { ...target, unit: what === 'requests' ? 'req/s' : `${what}/s`, perCpu: false },
    { ...target, atLeast: perCpuAtLeast, unit: `${what} per CPU second`, perCpu: true },
  ];
}

/** Issue 16's targets: the per-CPU line has the same goal as the req/s one. */
function rate(target: Omit<Target, 'perCpu' | 'unit' | 'issue'>, what = 'requests'): Target[] {
  return perSecond({ ...target, issue: 16 }, target.atLeast, what);
}

/** `measured` against `reference` in one scenario of the same run (see perSecond). */
function pair(issue: number, measured: ProxyName, reference: ProxyName, scenario: ScenarioName, atLeast: number, perCpuAtLeast: number | null = null): Target[] {
  return perSecond({ issue, scenario, measured: { proxy: measured, scenario }, reference: { proxy: reference, scenario }, atLeast }, perCpuAtLeast);
}

/** `measured`'s p99 no worse than `reference`'s in one scenario of the same run. */
function tail(issue: number, measured: ProxyName, reference: ProxyName, scenario: ScenarioName): Target {
  return { issue, scenario, measured: { proxy: measured, scenario }, reference: { proxy: reference, scenario }, atLeast: 1.0, unit: 'ms at p99', perCpu: false, p99: true };
}

/** The figure a target compares, from one outcome. */
function targetFigure(target: Target, outcome: Outcome | undefined): number | undefined {
  if (target.p99 !== true) return figureOf(outcome, target.perCpu);
  return outcome !== undefined && outcome.ok && 'load' in outcome ? outcome.load.p99Ms : undefined;
}

export const TARGETS: readonly Target[] = [
  // Issue 20: the limit kept in Redis against the same limit in memory.
  ...pair(20, 'gatehouse-limits-redis', 'gatehouse-limits', 'limits', 0.9),
  ...rate({
    scenario: 'https-small',
    measured: { proxy: 'gatehouse-tls', scenario: 'https-small' },
    reference: { proxy: 'gatehouse', scenario: 'small' },
    atLeast: 0.9,
  }),
  ...rate({
    scenario: 'https-small',
    measured: { proxy: 'gatehouse-tls', scenario: 'https-small' },
    reference: { proxy: 'nginx-tls', scenario: 'https-small' },
    atLeast: null,
  }),
  // The thinnest Node proxy over TLS, and its own plain figure: what TLS costs any Node proxy.
  ...rate({
    scenario: 'https-small',
    measured: { proxy: 'gatehouse-tls', scenario: 'https-small' },
    reference: { proxy: 'thin-undici-tls', scenario: 'https-small' },
    atLeast: null,
  }),
  ...rate({
    scenario: 'https-small',
    measured: { proxy: 'thin-undici-tls', scenario: 'https-small' },
    reference: { proxy: 'thin-undici', scenario: 'small' },
    atLeast: null,
  }),
  ...rate({
    scenario: 'h2',
    measured: { proxy: 'gatehouse-tls', scenario: 'h2' },
    reference: { proxy: 'gatehouse', scenario: 'small' },
    atLeast: 1.0,
  }),
  ...rate({
    scenario: 'h2',
    measured: { proxy: 'gatehouse-tls', scenario: 'h2' },
    reference: { proxy: 'nginx-tls', scenario: 'h2' },
    atLeast: null,
  }),
  // "Per core": the per-CPU line is the one to read when the load core, not nginx's, was the limit.
  ...rate(
    {
      scenario: 'handshake',
      measured: { proxy: 'gatehouse-tls', scenario: 'handshake' },
      reference: { proxy: 'nginx-tls', scenario: 'handshake' },
      atLeast: 0.8,
    },
    'handshakes',
  ),
  {
    issue: 16,
    scenario: 'tls-idle-memory',
    measured: { proxy: 'gatehouse-tls', scenario: 'tls-idle-memory' },
    reference: { proxy: 'nginx-tls', scenario: 'tls-idle-memory' },
    atLeast: null,
    unit: 'KiB per idle connection',
    perCpu: false,
  },
  // Issue 18: /metrics on costs less than 3 % (the same peer with an admin listener, same run).
  ...pair(18, 'gatehouse-metrics', 'gatehouse', 'small', 0.97, 0.97),
  ...pair(18, 'gatehouse-metrics', 'gatehouse', 'cache-hit', 0.97, 0.97),
  // Issue 21: compression on the fly, big bodies, the Node ceiling, cache hits.
  ...pair(21, 'gatehouse', 'nginx', 'gzip', 0.6),
  ...pair(21, 'gatehouse', 'caddy', 'gzip', 1.0),
  ...pair(21, 'gatehouse', 'nginx', 'large', 1.0),
  ...pair(21, 'gatehouse', 'thin-undici', 'small', 1.0),
  tail(21, 'gatehouse', 'thin-undici', 'small'),
  ...pair(21, 'gatehouse', 'thin-undici', 'medium', 1.0),
  tail(21, 'gatehouse', 'thin-undici', 'medium'),
  ...pair(21, 'gatehouse', 'node-static', 'cache-hit', 0.95),
  // Issue 19: the region choice costs no measurable throughput (within noise: at least 0.97).
  ...pair(19, 'gatehouse-gslb', 'gatehouse', 'small', 0.97, 0.97),
  // Issue 17, on the whole machine: two workers at least 1.4x one worker; against what a fastify
  // user would do (two processes under node:cluster) 1.5x; the shared rate-limit store under 5 %.
  ...pair(17, 'gatehouse-2w', 'gatehouse-1w', 'multicore', 1.4),
  ...pair(17, 'gatehouse-2w', 'fastify-cluster-2', 'multicore', 1.5),
  ...pair(17, 'gatehouse-2w-limited', 'gatehouse-2w', 'multicore', 0.95),
];

export interface TargetResult {
  target: Target;
  measured: number | undefined;
  reference: number | undefined;
  ratio: number | undefined;
  met: boolean | undefined;
}

const name = (f: Figure): string => `${f.proxy} ${f.scenario}`;
const number = (value: number): string => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1));

export function evaluateTargets(reports: readonly ScenarioReport[]): TargetResult[] {
  const selected = new Set(reports.map((r) => r.scenario.name));
  return TARGETS.filter((t) => selected.has(t.scenario)).map((target) => {
    const measured = targetFigure(target, outcomeIn(reports, target.measured.scenario, target.measured.proxy));
    const reference = targetFigure(target, outcomeIn(reports, target.reference.scenario, target.reference.proxy));
    const [numerator, denominator] = target.p99 === true ? [reference, measured] : [measured, reference];
    const ratio = numerator === undefined || denominator === undefined || denominator === 0 ? undefined : numerator / denominator;
    const met = ratio === undefined || target.atLeast === null ? undefined : ratio >= target.atLeast;
    return { target, measured, reference, ratio, met };
  });
}

/** 0.9 -> "0.9", 1 -> "1.0", 0.95 -> "0.95". */
const goal = (value: number): string => (Number.isInteger(value * 10) ? value.toFixed(1) : String(value));

export function formatTargets(results: readonly TargetResult[]): string {
  if (results.length === 0) return '';
  const issues = [...new Set(results.map((r) => r.target.issue))];
  return issues.map((issue) => formatIssue(issue, results.filter((r) => r.target.issue === issue))).join('\n\n');
}

function formatIssue(issue: number, results: readonly TargetResult[]): string {
  const lines = results.flatMap(({ target, measured, reference, ratio, met }) => {
    const what =
      target.p99 === true
        ? `p99 ${name(target.reference)} / ${name(target.measured)}`
        : `${name(target.measured)} / ${name(target.reference)}${target.perCpu ? ', per proxy CPU second' : ''}`;
    if (ratio === undefined || measured === undefined || reference === undefined) {
      if (target.perCpu) return []; // the req/s line above already says what is missing
      return `  ${what}: n/a (both must run in the same run: --only ${target.measured.proxy},${target.reference.proxy} --scenario ${target.measured.scenario === target.reference.scenario ? target.measured.scenario : `${target.reference.scenario},${target.measured.scenario}`})`;
    }
    const verdict = target.atLeast === null ? '' : `, target >= ${goal(target.atLeast)}x: ${met === true ? 'met' : 'NOT met'}`;
    const [shownFirst, shownSecond] = target.p99 === true ? [reference, measured] : [measured, reference];
    return `  ${what} = ${ratio.toFixed(2)}x (${number(shownFirst)} / ${number(shownSecond)} ${target.unit}${verdict})`;
  });
  return [`Targets (issue ${issue}), ratios from this run:`, ...lines].join('\n');
}
