// Issue 16's targets for TLS and HTTP/2, as summary lines under the tables: each one a ratio of
// two figures from the same run, met or not.
import type { ProxyName, ScenarioName } from './options.ts';
import { figureOf, outcomeIn, type ScenarioReport } from './report.ts';

interface Figure {
  proxy: ProxyName;
  scenario: ScenarioName;
}

export interface Target {
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
}

type RateTarget = Omit<Target, 'perCpu' | 'unit'>;

/** A req/s target, then the same per second of proxy CPU time. */
function rate(target: RateTarget, what = 'requests'): Target[] {
  return [
    { ...target, unit: what === 'requests' ? 'req/s' : `${what}/s`, perCpu: false },
    { ...target, unit: `${what} per CPU second`, perCpu: true },
  ];
}

export const TARGETS: readonly Target[] = [
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
    scenario: 'tls-idle-memory',
    measured: { proxy: 'gatehouse-tls', scenario: 'tls-idle-memory' },
    reference: { proxy: 'nginx-tls', scenario: 'tls-idle-memory' },
    atLeast: null,
    unit: 'KiB per idle connection',
    perCpu: false,
  },
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
    const measured = figureOf(outcomeIn(reports, target.measured.scenario, target.measured.proxy), target.perCpu);
    const reference = figureOf(outcomeIn(reports, target.reference.scenario, target.reference.proxy), target.perCpu);
    const ratio = measured === undefined || reference === undefined || reference === 0 ? undefined : measured / reference;
    const met = ratio === undefined || target.atLeast === null ? undefined : ratio >= target.atLeast;
    return { target, measured, reference, ratio, met };
  });
}

export function formatTargets(results: readonly TargetResult[]): string {
  if (results.length === 0) return '';
  const lines = results.flatMap(({ target, measured, reference, ratio, met }) => {
    const what = `${name(target.measured)} / ${name(target.reference)}${target.perCpu ? ', per proxy CPU second' : ''}`;
    if (ratio === undefined || measured === undefined || reference === undefined) {
      if (target.perCpu) return []; // the req/s line above already says what is missing
      return `  ${what}: n/a (both must run in the same run: --only ${target.measured.proxy},${target.reference.proxy} --scenario ${target.measured.scenario === target.reference.scenario ? target.measured.scenario : `${target.reference.scenario},${target.measured.scenario}`})`;
    }
    const goal = target.atLeast === null ? '' : `, target >= ${target.atLeast.toFixed(1)}x: ${met === true ? 'met' : 'NOT met'}`;
    return `  ${what} = ${ratio.toFixed(2)}x (${number(measured)} / ${number(reference)} ${target.unit}${goal})`;
  });
  return ['Targets (issue 16), ratios from this run:', ...lines].join('\n');
}
