import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResponseFilter, UpstreamRequestEdits } from '../middleware/pipeline.ts';
import type { RequestInfo } from '../routing/request-info.ts';
import type { Route } from '../routing/router.ts';
import type { Server } from '../upstream/server.ts';
import type { GslbChoice } from '../gslb/action.ts';
import type { ErrorCode } from './errors.ts';
import type { HstsField } from './response-fields.ts';
import type { Snapshot } from './snapshot.ts';

/** Per-request state, from the first byte read to the access-log line. */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The snapshot read once at dispatch and kept for the whole request. */
  readonly snapshot: Snapshot;
  readonly info: RequestInfo;
  /** The connection's peer: the socket's remote address, or the one a PROXY protocol header gave. */
  readonly peer: string;
  /**
   * The client that access rules, rate limits and bans apply to: `peer`, or the address
   * X-Forwarded-For names when the peer is a trusted proxy (resolved only when a rule needs it).
   */
  client: string;
  /** "http" or "https": the scheme the client used. */
  readonly proto: string;
  /**
   * The request came over HTTP/2: `req` and `res` are node:http2's compatibility objects, which
   * have IncomingMessage's and ServerResponse's members used here but not node:http's internals.
   */
  readonly h2: boolean;
  readonly startedAt: number;
  #endedAt = -1;
  route: Route | undefined;
  server: Server | undefined;
  /** The region a gslb route chose (and the regions tried); null on other routes. */
  gslb: GslbChoice | null = null;
  /** The listener's Strict-Transport-Security (its `hsts`), added to every head written; null on plain listeners and without `hsts`. */
  hsts: HstsField | null = null;
  /** The status sent, or what the access log should say (499 when the client left). */
  status = 0;
  /** Body bytes sent downstream. */
  bytes = 0;
  /** Request body bytes read of a body without Content-Length (counted while max_body_size holds it). */
  bodyBytesIn = 0;
  /** When the upstream's response headers arrived, ms since startedAt; -1 when none did. */
  upstreamHeadersMs = -1;
  /** Tries sent to servers (more than one after a retry); 0 when none was. */
  tries = 0;
  errorCode: ErrorCode | undefined;
  finished = false;
  /** W3C trace id (32 hex), '' when tracing is off. */
  traceId = '';
  /** Gatehouse's span for this request (16 hex): the parent in the traceparent sent to servers. */
  spanId = '';
  /** The client's span (from its traceparent), '' when the trace started here. */
  parentSpanId = '';
  /** The trace is sampled (the flag sent on; a span is exported when an OTLP export is set). */
  sampled = false;
  /** The request id (X-Request-Id by default), '' when off. */
  requestId = '';
  /** Filters the upstream response passes through; null (the usual case) when none. */
  responseFilters: ResponseFilter[] | null = null;
  /** Changes a middleware made to the request sent upstream (a cache); null (the usual case) when none. */
  upstreamEdits: UpstreamRequestEdits | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, info: RequestInfo, peer: string, proto: string, h2 = false) {
    this.req = req;
    this.res = res;
    this.snapshot = snapshot;
    this.info = info;
    this.peer = peer;
    this.client = peer;
    this.proto = proto;
    this.h2 = h2;
    this.startedAt = performance.now();
  }

  /**
   * Milliseconds from the request's start to its end: the clock is read once, at the first call
   * (the access log, the metrics and the dashboard each ask when the request finishes).
   */
  elapsedMs(): number {
    if (this.#endedAt < 0) this.#endedAt = performance.now();
    return this.#endedAt - this.startedAt;
  }

  addResponseFilter(filter: ResponseFilter): void {
    (this.responseFilters ??= []).push(filter);
  }
}
