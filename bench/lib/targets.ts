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
}

export const TARGETS: readonly Target[] = [
  {
    scenario: 'https-small',
    measured: { proxy: 'gatehouse-tls', scenario: 'https-small' },
    reference: { proxy: 'gatehouse', scenario: 'small' },
    atLeast: 0.9,
    unit: 'req/s',
  },
  {
    scenario: 'https-small',
    measured: { proxy: 'gatehouse-tls', scenario: 'https-small' },
    reference: { proxy: 'nginx-tls', scenario: 'https-small' },
    atLeast: null,
    unit: 'req/s',
  },
  {
    scenario: 'h2',
    measured: { proxy: 'gatehouse-tls', scenario: 'h2' },
    reference: { proxy: 'gatehouse', scenario: 'small' },
    atLeast: 1.0,
    unit: 'req/s',
  },
  {
    scenario: 'h2',
    measured: { proxy: 'gatehouse-tls', scenario: 'h2' },
    reference: { proxy: 'nginx-tls', scenario: 'h2' },
    atLeast: null,
    unit: 'req/s',
  },
  {
    scenario: 'handshake',
    measured: { proxy: 'gatehouse-tls', scenario: 'handshake' },
    reference: { proxy: 'nginx-tls', scenario: 'handshake' },
    atLeast: 0.8,
    unit: 'handshakes/s',
  },
  {
    scenario: 'tls-idle-memory',
    measured: { proxy: 'gatehouse-tls', scenario: 'tls-idle-memory' },
    reference: { proxy: 'nginx-tls', scenario: 'tls-idle-memory' },
    atLeast: null,
    unit: 'KiB per idle connection',
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
    const measured = figureOf(outcomeIn(reports, target.measured.scenario, target.measured.proxy));
    const reference = figureOf(outcomeIn(reports, target.reference.scenario, target.reference.proxy));
    const ratio = measured === undefined || reference === undefined || reference === 0 ? undefined : measured / reference;
    const met = ratio === undefined || target.atLeast === null ? undefined : ratio >= target.atLeast;
    return { target, measured, reference, ratio, met };
  });
}

export function formatTargets(results: readonly TargetResult[]): string {
  if (results.length === 0) return '';
  const lines = results.map(({ target, measured, reference, ratio, met }) => {
    const what = `${name(target.measured)} / ${name(target.reference)}`;
    if (ratio === undefined || measured === undefined || reference === undefined) {
      return `  ${what}: n/a (both must run in the same run: --only ${target.measured.proxy},${target.reference.proxy} --scenario ${target.measured.scenario === target.reference.scenario ? target.measured.scenario : `${target.reference.scenario},${target.measured.scenario}`})`;
    }
    const goal = target.atLeast === null ? '' : `, target >= ${target.atLeast.toFixed(1)}x: ${met === true ? 'met' : 'NOT met'}`;
    return `  ${what} = ${ratio.toFixed(2)}x (${number(measured)} / ${number(reference)} ${target.unit}${goal})`;
  });
  return ['Targets (issue 16), ratios from this run:', ...lines].join('\n');
}
