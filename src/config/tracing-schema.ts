/** The `tracing` block: W3C trace context towards servers, request ids, and optional OTLP span export. */
import { z } from 'zod';
import { headerName } from './units.ts';

const otlp = z.strictObject({
  /** Where spans are posted: an OTLP/HTTP collector's traces URL, e.g. http://127.0.0.1:4318/v1/traces. */
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
  /** service.name of the exported spans. */
  service_name: z.string().min(1).default('gatehouse'),
  /** Extra headers sent with each export (an API key). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Share of the traces this proxy starts that are sampled and exported, 0 to 1 (a client's sampled flag is followed). */
  sample_ratio: z.number().min(0).max(1).default(1),
});

/** The `tracing` block (trace context and X-Request-Id on by default, no export). */
export const tracingSchema = z
  .strictObject({
    /**
     * Send W3C `traceparent` (a child of the client's, or a new trace) and the client's
     * `tracestate` to servers, and log the trace id.
     */
    enabled: z.boolean().default(true),
    /**
     * The request id header: taken from a trusted proxy's request, else made here; sent to servers,
     * returned to the client and logged. `false` for none.
     */
    request_id_header: z.union([headerName.transform((h) => h.toLowerCase()), z.literal(false)]).default('x-request-id'),
    /** Export a span per request to an OpenTelemetry collector over OTLP/HTTP (JSON); off unless set. */
    otlp: otlp.optional(),
  })
  .prefault({});

/** The validated `tracing` block. */
export type TracingConfig = z.output<typeof tracingSchema>;
/** The validated `tracing.otlp` block. */
export type OtlpConfig = z.output<typeof otlp>;
