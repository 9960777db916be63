/**
 * Trace context and request ids of each request (compiled once per snapshot): a child of the
 * client's `traceparent` or a new trace, the request id from a trusted proxy or made here, and
 * the span handed to the OTLP export when one is configured.
 */
import type { Config } from '../../config/schema.ts';
import type { Exchange } from '../exchange.ts';
import type { Registry } from '../registry.ts';
import { randomHex } from './ids.ts';
import type { SpanExport } from './span-export.ts';
import { acquireSpanExport } from './span-export.ts';
import { parseTraceparent } from './trace-context.ts';

/** Who may name the request id: trusted_proxies (structurally, so that core needs no middleware import). */
interface AddressSet {
  has(address: string): boolean;
}

/** A snapshot's tracing, compiled from `tracing` (see compileTracing). */
export interface TracingPolicy {
  /** Trace context is read, started and sent to servers. */
  readonly enabled: boolean;
  /** The request id header, lowercase; null for none. */
  readonly requestIdHeader: string | null;
  /** Peers whose request id is taken (trusted_proxies); null when none is trusted. */
  readonly trusted: AddressSet | null;
  /** Where sampled spans go; null without `tracing.otlp`. */
  readonly spans: SpanExport | null;
  /** Share of the traces started here that are sampled. */
  readonly sampleRatio: number;
  /** The registry key of `spans`, to release it with the snapshot; '' when none. */
  readonly spansKey: string;
}

/** Request ids longer than this, or with bytes outside visible ASCII, are replaced (they go into logs and headers). */
const MAX_REQUEST_ID = 128;

/** The policy of `config.tracing`; the span export, when one is set, is acquired from the registry (releaseTracing gives it back). */
export function compileTracing(config: Config, trusted: AddressSet | null, registry: Registry): TracingPolicy {
  const tracing = config.tracing;
  const exported = tracing.enabled && tracing.otlp !== undefined ? acquireSpanExport(registry, tracing.otlp) : null;
  return Object.freeze({
    enabled: tracing.enabled,
    requestIdHeader: tracing.request_id_header === false ? null : tracing.request_id_header,
    trusted,
    spans: exported?.spans ?? null,
    sampleRatio: tracing.otlp?.sample_ratio ?? 1,
    spansKey: exported?.key ?? '',
  });
}

/** Gives back the span export the policy holds. */
export function releaseTracing(policy: TracingPolicy, registry: Registry): void {
  if (policy.spansKey !== '') registry.releaseShared(policy.spansKey);
}

/**
 * Sets the exchange's trace and request ids. Called once per request at
 * dispatch; with tracing and the request id both off it sets nothing. A trace started here takes its trace id as
 * the request id too: one id to look for, one random conversion fewer.
 */
export function startTrace(ex: Exchange, policy: TracingPolicy): void {
  const headers = ex.req.headers;
  let started = false;
  if (policy.enabled) {
    const incoming = parseTraceparent(headers.traceparent);
    if (incoming !== null) {
      ex.traceId = incoming.traceId;
      ex.parentSpanId = incoming.parentId;
      // The client's decision is followed (W3C Trace Context §3.2.2.5).
      ex.sampled = (incoming.flags & 1) === 1;
    } else {
      ex.traceId = randomHex(16);
      // Without an export, servers decide for themselves: the flag says they may record.
      ex.sampled = policy.spans === null || policy.sampleRatio >= 1 || Math.random() < policy.sampleRatio;
      started = true;
    }
    ex.spanId = randomHex(8);
  }
  const header = policy.requestIdHeader;
  if (header === null) return;
  const given = headers[header];
  let id: string;
  if (typeof given === 'string' && policy.trusted !== null && policy.trusted.has(ex.peer) && isValidRequestId(given)) id = given;
  else id = started ? ex.traceId : randomHex(16);
  // The response field is added where the head is written (request-id.ts).
  ex.requestId = id;
}

function isValidRequestId(id: string): boolean {
  if (id.length === 0 || id.length > MAX_REQUEST_ID) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
