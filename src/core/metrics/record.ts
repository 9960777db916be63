/** Counts a finished request into its route's and server's Traffic: the one metrics hook on the request path. */
import type { Exchange } from '../exchange.ts';
import type { Registry } from '../registry.ts';
import { statusClass, Traffic } from './traffic.ts';

/** A snapshot's request metrics (null in the snapshot when `admin.metrics` is off or there is no admin listener). */
export class RequestMetrics {
  /** Requests no route matched. */
  readonly unrouted: Traffic;

  constructor(unrouted: Traffic) {
    this.unrouted = unrouted;
  }

  /** Called once per request, where the access log line is written. */
  record(ex: Exchange): void {
    const seconds = ex.elapsedMs() / 1000;
    const slot = statusClass(ex.status);
    const route = ex.route;
    const traffic = route === undefined ? this.unrouted : route.traffic;
    const length = ex.req.headers['content-length'];
    // A declared length, or what the body limit counted of a chunked body.
    const bytesIn = length === undefined ? ex.bodyBytesIn : Number(length) || 0;
    const bytesOut = ex.bytes;
    traffic.requests[slot]! += 1;
    traffic.latency.observe(seconds);
    traffic.bytesIn += bytesIn;
    traffic.bytesOut += bytesOut;
    const server = ex.server;
    if (server === undefined) return;
    const upstream = server.state.traffic;
    upstream.requests[slot]! += 1;
    if (ex.upstreamHeadersMs >= 0) upstream.latency.observe(ex.upstreamHeadersMs / 1000);
    upstream.bytesIn += bytesIn;
    upstream.bytesOut += bytesOut;
  }
}

const ROUTE_KEY = 'metrics|route|';

/**
 * The Traffic of the route named `name` forwarding to `upstream` ('' for none), kept across
 * reloads; pair with releaseRouteTraffic. Routes sharing a name and an upstream share it: they
 * are one series in /metrics.
 */
export function acquireRouteTraffic(registry: Registry, name: string, upstream: string): Traffic {
  return registry.acquireShared(`${ROUTE_KEY}${name}\n${upstream}`, () => new Traffic());
}

/** Gives back what acquireRouteTraffic took for the same name and upstream. */
export function releaseRouteTraffic(registry: Registry, name: string, upstream: string): void {
  registry.releaseShared(`${ROUTE_KEY}${name}\n${upstream}`);
}

/** What is recorded of every finished request besides its access-log line: metrics, and its span when sampled and exported. */
export function recordFinished(ex: Exchange): void {
  const snapshot = ex.snapshot;
  const metrics = snapshot.metrics;
  if (metrics !== null) metrics.record(ex);
  if (ex.sampled) {
    const spans = snapshot.tracing.spans;
    if (spans !== null) spans.end(ex);
  }
}
