/**
 * GET /metrics: the families in prom-client's text format. prom-client is loaded at the first
 * scrape (nothing of it runs on the request path); process metrics (CPU, memory, event loop lag,
 * GC) start then. With worker threads, each worker answers with getMetricsAsJSON() and the
 * primary merges them with its own (AggregatorRegistry.aggregate: counters and histograms add up).
 */
import type { ServerResponse } from 'node:http';
import type { Metric, MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { Family } from './family.ts';

/** The text of a scrape and its content type. */
export interface MetricsAnswer {
  readonly contentType: string;
  readonly body: string;
}

/** What a worker sends the primary for a scrape. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export class MetricsEndpoint {
  readonly #families: () => Family[];
  readonly #processMetrics: boolean;
  #registry: Promise<Registry> | null = null;

  /** `processMetrics`: add prom-client's process and Node.js metrics (once per process: the primary's, with workers). */
  constructor(families: () => Family[], processMetrics: boolean) {
    this.#families = families;
    this.#processMetrics = processMetrics;
  }

  #prometheus(): Promise<Registry> {
    this.#registry ??= (async () => {
      const prom = await import('prom-client');
      const registry = new prom.Registry();
      for (const family of this.#families()) registry.registerMetric(family as unknown as Metric);
      if (this.#processMetrics) prom.collectDefaultMetrics({ register: registry });
      return registry;
    })();
    return this.#registry;
  }

  async text(): Promise<MetricsAnswer> {
    const registry = await this.#prometheus();
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  async json(): Promise<MetricsJson> {
    return (await this.#prometheus()).getMetricsAsJSON() as Promise<MetricsJson>;
  }
}

/** One scrape for the whole proxy: the primary's metrics and each worker's, merged. */
export async function mergeMetrics(own: MetricsJson, workers: readonly MetricsJson[]): Promise<MetricsAnswer> {
  const prom = await import('prom-client');
  const registry = prom.AggregatorRegistry.aggregate([own, ...workers]);
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** Writes a scrape (Prometheus text). */
export function sendMetrics(res: ServerResponse, answer: MetricsAnswer): void {
  res.writeHead(200, { 'content-type': answer.contentType, 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}
