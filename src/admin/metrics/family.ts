/**
 * A metric family read at scrape time from state the proxy keeps anyway, in the shape prom-client's
 * Registry expects of a metric (`name`, `get()`): it formats the text and `getMetricsAsJSON()`
 * gives what AggregatorRegistry.aggregate() merges over worker threads.
 */
import { LATENCY_BUCKETS, type Histogram } from '../../core/metrics/traffic.ts';

/** One sample: a value under its labels; `metricName` for a histogram's _bucket, _sum and _count lines. */
export interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

export type FamilyType = 'counter' | 'gauge' | 'histogram';

/** How worker threads' values are merged (prom-client's aggregators): counts add up, states take the highest. */
export type Aggregator = 'sum' | 'max' | 'min' | 'first';

/** What a metric's values are read from, appended to `out`. */
export type Reader = (out: Sample[]) => void | Promise<void>;

export class Family {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  readonly aggregator: Aggregator;
  readonly #read: Reader;

  constructor(name: string, type: FamilyType, help: string, read: Reader, aggregator: Aggregator = type === 'gauge' ? 'max' : 'sum') {
    this.name = name;
    this.type = type;
    this.help = help;
    this.aggregator = aggregator;
    this.#read = read;
  }

  async get(): Promise<{ name: string; help: string; type: FamilyType; aggregator: Aggregator; values: Sample[] }> {
    const values: Sample[] = [];
    await this.#read(values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A histogram's samples: cumulative buckets with `le`, then _sum and _count. */
export function histogramSamples(out: Sample[], name: string, labels: Record<string, string>, histogram: Histogram): void {
  const counts = histogram.counts;
  let cumulative = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    cumulative += counts[i] as number;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: LATENCY_BUCKETS[i] as number }, value: cumulative });
  }
  cumulative += counts[LATENCY_BUCKETS.length] as number;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: histogram.sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
}
