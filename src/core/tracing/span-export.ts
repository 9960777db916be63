/**
 * Optional OTLP/HTTP export of one span per sampled request (tracing.otlp). The OpenTelemetry SDK
 * is loaded only when an export is configured, and then in the background: loading it at start
 * measurably slowed the proxy, and most deployments never use it. Gatehouse makes its own ids
 * (core/tracing/ids.ts), so spans are handed to the SDK's batch processor as finished
 * ReadableSpans rather than made through its Tracer (whose span ids could not be the ones sent to
 * servers). Kept in the registry by its settings, so that a reload does not restart it.
 */
import type { SpanContext, SpanKind, SpanStatusCode, Attributes, HrTime } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { OtlpConfig } from '../../config/tracing-schema.ts';
import type { Exchange } from '../exchange.ts';
import type { Registry, SharedState } from '../registry.ts';
import { errorMessage } from '../caught.ts';

/** Spans kept while the SDK loads; more are dropped. */
const MAX_PENDING = 2048;
const SERVER_KIND = 1 as SpanKind;
const STATUS_UNSET = 0 as SpanStatusCode;
const STATUS_ERROR = 2 as SpanStatusCode;

type Resource = ReadableSpan['resource'];

/** One OTLP export: the SDK's batch processor once loaded, the spans ended before that kept meanwhile. */
export class SpanExport implements SharedState {
  #processor: SpanProcessor | null = null;
  #resource: Resource | null = null;
  #pending: ReadableSpan[] = [];
  #closed = false;
  /** Why the SDK could not be loaded; null when it was (or is loading). */
  loadError: string | null = null;
  /** Settles when the SDK has loaded (or failed to). */
  readonly ready: Promise<void>;

  constructor(config: OtlpConfig) {
    this.ready = this.#load(config).catch((error: unknown) => {
      // Tracing must never take the proxy down: spans are dropped, the reason is kept for status.
      this.loadError = errorMessage(error);
      this.#pending = [];
    });
  }

  async #load(config: OtlpConfig): Promise<void> {
    const [sdk, otlp, resources] = await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
    const exporter = new otlp.OTLPTraceExporter({ url: config.endpoint, headers: config.headers });
    this.#resource = resources.resourceFromAttributes({ 'service.name': config.service_name });
    this.#processor = new sdk.BatchSpanProcessor(exporter);
    if (this.#closed) {
      await this.#processor.shutdown();
      return;
    }
    // The spans of requests that ended while the SDK was loading now get their resource.
    for (const span of this.#pending) this.#processor.onEnd({ ...span, resource: this.#resource, spanContext: span.spanContext });
    this.#pending = [];
  }

  /** The span of a finished, sampled request. */
  end(ex: Exchange): void {
    if (this.#closed) return;
    const span = toSpan(ex, this.#resource);
    if (this.#processor !== null) this.#processor.onEnd(span);
    else if (this.#pending.length < MAX_PENDING && this.loadError === null) this.#pending.push(span);
  }

  /** Sends what is batched now (tests, shutdown). */
  async flush(): Promise<void> {
    await this.ready;
    await this.#processor?.forceFlush();
  }

  close(): void {
    this.#closed = true;
    void this.#processor?.shutdown().catch(() => {
      // The collector may be gone at shutdown: the spans are lost, the proxy stops anyway.
    });
  }
}

/** The export for `config`, shared by the snapshots with the same settings; release with its key. */
export function acquireSpanExport(registry: Registry, config: OtlpConfig): { spans: SpanExport; key: string } {
  const key = `otlp|${JSON.stringify(config)}`;
  return { spans: registry.acquireShared(key, () => new SpanExport(config)), key };
}

const SCOPE = Object.freeze({ name: 'gatehouse' });
const NO_RESOURCE = { attributes: {}, merge: () => NO_RESOURCE, getRawAttributes: () => [] } as unknown as Resource;

function toSpan(ex: Exchange, resource: Resource | null): ReadableSpan {
  const start = performance.timeOrigin + ex.startedAt;
  // The end the access log took (elapsedMs keeps it): the span lasts what the log line says.
  const elapsed = ex.elapsedMs();
  const end = start + elapsed;
  const traceId = ex.traceId;
  const context: SpanContext = { traceId, spanId: ex.spanId, traceFlags: 1 };
  const parent: SpanContext | undefined = ex.parentSpanId === '' ? undefined : { traceId, spanId: ex.parentSpanId, traceFlags: 1, isRemote: true };
  const route = ex.route;
  const attributes: Attributes = {
    'http.request.method': ex.info.method,
    'url.scheme': ex.proto,
    'url.path': ex.info.path,
    'server.address': ex.info.host,
    'client.address': ex.client,
    'http.response.status_code': ex.status,
  };
  if (route !== undefined) {
    attributes['gatehouse.route'] = route.name;
    if (route.action.kind === 'forward') attributes['gatehouse.upstream'] = route.action.upstream.name;
  }
  if (ex.server !== undefined) attributes['gatehouse.server'] = ex.server.authority;
  if (ex.tries > 1) attributes['gatehouse.tries'] = ex.tries;
  if (ex.requestId !== '') attributes['gatehouse.request_id'] = ex.requestId;
  if (ex.errorCode !== undefined) attributes['error.type'] = ex.errorCode;
  return {
    name: route === undefined ? ex.info.method : `${ex.info.method} ${route.name}`,
    kind: SERVER_KIND,
    spanContext: () => context,
    ...(parent === undefined ? {} : { parentSpanContext: parent }),
    startTime: hrTime(start),
    endTime: hrTime(end),
    duration: hrTime(elapsed),
    status: { code: ex.status >= 500 || ex.status === 0 ? STATUS_ERROR : STATUS_UNSET },
    attributes,
    links: [],
    events: [],
    ended: true,
    resource: resource ?? NO_RESOURCE,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function hrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6))];
}
