/**
 * The forward action: pick a server, send the request with its body streaming, and stream the
 * response back with backpressure in both directions.
 *
 * The attempt loop (as Pingora's and Envoy's): each try is a ForwardHandler that takes the
 * upstream's next pick, skipping servers that are unavailable, full or already tried; a failed try
 * that the retry policy, the retry budget and the request body allow starts the next one on
 * another server. The success path pays for none of it: one handler, one pick, no timers.
 */
import type { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Exchange } from '../core/exchange.ts';
import { noteBodyBytes } from '../core/body-memory.ts';
import { GatehouseError, toGatehouseError, type ErrorCode } from '../core/errors.ts';
import { addResponseFields } from '../core/response-fields.ts';
import { sendError } from '../listeners/respond.ts';
import type { NamedDispatchOptions } from '../transport/pool.ts';
import { applyToFlat, applyToRecord } from '../middleware/headers.ts';
import { applyResponseFilters, rescueByFilter, WholeBody, type FilterChainOwner } from '../middleware/pipeline.ts';
import type { ForwardAction } from '../routing/actions.ts';
import { requestBody } from '../middleware/body-limit.ts';
import { answeredAsFinalRecipient } from './max-forwards.ts';
import { buildRequestHeaders } from './request-headers.ts';
import { replayable } from './retry.ts';
import { rewriteResponseHeaders } from './rewrite.ts';
import type { Server } from './server.ts';
import type { Attempt } from './upstream.ts';
import { ADMITTED, REJECTED, type QueuedRequest } from './upstream-state.ts';
import { WholeResponse } from './whole-response.ts';

type DispatchController = Parameters<Dispatcher.DispatchHandler['onRequestStart'] & {}>[0];
type FinishExchange = (ex: Exchange) => void;

export function forward(ex: Exchange, action: ForwardAction, finish: FinishExchange): void {
  const method = ex.req.method;
  if ((method === 'OPTIONS' || method === 'TRACE') && answeredAsFinalRecipient(ex)) {
    finish(ex);
    return;
  }
  const body = requestBody(ex);
  if (body instanceof GatehouseError) {
    sendError(ex, body);
    finish(ex);
    return;
  }
  const handler = new ForwardHandler(ex, action, finish, body, null);
  // Circuit breaking: a slot among the upstream's max_in_flight, a place in its queue, or 503 now.
  const admission = action.upstream.state.admit(handler, ex.startedAt);
  if (admission === ADMITTED) handler.start();
  else if (admission === REJECTED) handler.refuse('OVERLOADED');
  // Queued: the upstream calls dequeued() when a slot frees, or expired() after queue_timeout.
}

/**
 * One try of a request: sends it to a server and streams the response into the client's
 * response. A retry is a new ForwardHandler linked to the tries before it.
 */
class ForwardHandler implements Dispatcher.DispatchHandler, QueuedRequest, Attempt, FilterChainOwner {
  readonly #ex: Exchange;
  readonly #action: ForwardAction;
  readonly #finish: FinishExchange;
  readonly #body: Readable | null;
  /** The try before this one, null for the first; their servers count as tried. */
  readonly #previous: ForwardHandler | null;
  /** 0 for the first try. */
  readonly #attempt: number;
  /** The first try holds the request's client-close listener and knows the current try. */
  readonly #first: ForwardHandler;
  #current: ForwardHandler;
  #server: Server | null = null;
  /** performance.now() when the request was dispatched to the server. */
  #sentAt = 0;
  /** A later try took over: this one only lets its response drain, and tells the client nothing. */
  #superseded = false;
  /** Set by Upstream.choose(): the client's sticky cookie already names this try's server. */
  pinned = false;
  /** performance.now() while waiting in the upstream's queue, else -1. */
  queuedAt = -1;
  #controller: DispatchController | null = null;
  #done = false;
  #completed = false;
  /** Where body chunks go: the client's response, or the first response filter. */
  #sink: Writable;
  /** A response filter answered the client (a cache): nothing is written to the response here. */
  #answered = false;
  /** A head held back until enough of a body of unknown length was seen (see heldBytes). */
  #held: HeldHead | null = null;
  /** A body a response filter rewrites whole: collected, then written with its head at the end. */
  #whole: WholeResponse | null = null;

  constructor(ex: Exchange, action: ForwardAction, finish: FinishExchange, body: Readable | null, previous: ForwardHandler | null) {
    this.#ex = ex;
    this.#action = action;
    this.#finish = finish;
    this.#body = body;
    this.#previous = previous;
    this.#attempt = previous === null ? 0 : previous.#attempt + 1;
    this.#first = previous === null ? this : previous.#first;
    this.#current = this;
    this.#sink = ex.res;
    if (previous === null) ex.res.once('close', () => this.#clientClosed());
  }

  /**
   * A client that hangs up aborts the current try (and is never counted against the server),
   * unless the client was already answered by a response filter, which still reads the body (a
   * cache refreshing an entry in the background, or storing what it answered a 304 for).
   */
  #clientClosed(): void {
    const ex = this.#ex;
    const current = this.#current;
    if (current.queuedAt >= 0) {
      this.#action.upstream.state.cancel(current);
      sendError(ex, new GatehouseError('CLIENT_CLOSED'));
      this.#finish(ex);
      return;
    }
    if (!current.#done && !current.#answered && !ex.finished) current.#controller?.abort(new GatehouseError('CLIENT_CLOSED'));
  }

  /** Starts this try on the upstream's next pick; the request holds an in-flight slot. */
  start(): void {
    const server = this.#action.upstream.choose(this.#ex, this);
    if (server !== undefined) {
      this.#launch(server);
      return;
    }
    if (!this.#spillOver()) this.#unplaceable();
  }

  /** A later try takes over from this one, on `server`. */
  #handOver(next: ForwardHandler, server: Server): void {
    this.#superseded = true;
    this.#first.#current = next;
    next.#launch(server);
  }

  /**
   * GSLB spill-over: this region's upstream has no server left for the request, so the next
   * region's takes it (as a new try, holding a slot there; the slot here is given back). False
   * when no region is left, or none has room.
   */
  #spillOver(): boolean {
    const spill = this.#action.spill;
    if (spill === null) return false;
    const ex = this.#ex;
    // Each call marks the region tried, so this ends within the block's regions.
    for (let action = spill(ex); action !== null; action = spill(ex)) {
      const state = action.upstream.state;
      if (!state.take(performance.now())) continue;
      const next = new ForwardHandler(ex, action, this.#finish, this.#body, this);
      const server = action.upstream.choose(ex, next);
      if (server === undefined) {
        state.release();
        continue;
      }
      this.#action.upstream.state.release();
      this.#handOver(next, server);
      return true;
    }
    return false;
  }

  #launch(server: Server): void {
    const ex = this.#ex;
    const action = this.#action;
    const upstream = action.upstream;
    this.#server = server;
    ex.server = server;
    ex.tries++;
    const state = server.state;
    state.inFlight++;
    state.requests++;
    const req = ex.req;
    const url = req.url as string;
    const edits = ex.upstreamEdits;
    const headers = buildRequestHeaders(ex, action.requestHeaders, upstream.http2);
    const now = performance.now();
    this.#sentAt = now;
    let headersTimeout = upstream.headersTimeout;
    const deadline = upstream.retry.deadlineMs;
    if (deadline > 0) {
      // The overall deadline cuts the try that is running when it passes.
      const left = Math.max(1, deadline - (now - ex.startedAt));
      headersTimeout = headersTimeout === 0 ? left : Math.min(headersTimeout, left);
    }
    const options: NamedDispatchOptions = {
      path: action.rewritePath === null ? url : action.rewritePath(url, ex.info.path),
      method: edits?.method ?? (req.method as string),
      headers: edits === null || edits.headers === null ? headers : applyToFlat(edits.headers, headers),
      body: this.#body,
      headersTimeout,
      bodyTimeout: upstream.bodyTimeout,
      servername: server.servername,
    };
    server.pool.dispatch(options, this);
  }

  /** True for a server an earlier try of this request went to. */
  tried(server: Server): boolean {
    for (let t = this.#previous; t !== null; t = t.#previous) if (t.#server === server) return true;
    return false;
  }

  /**
   * Starts the request's next try on another server when the retry policy, the request body, the
   * deadline and the retry budget allow it; true if it did. `failure` is null for a retried status.
   */
  #retry(failure: GatehouseError | null): boolean {
    const ex = this.#ex;
    const upstream = this.#action.upstream;
    const policy = upstream.retry;
    if (this.#attempt + 1 >= policy.attempts) return false;
    const method = ex.upstreamEdits?.method ?? (ex.req.method as string);
    if (failure !== null) {
      const condition = failure.kind.retryOn;
      if (condition === null || !policy.conditions.has(condition)) return false;
      // Past a connect failure the request may have reached the server: only idempotent methods
      // go again, unless it never got a connection (no onRequestStart, nothing written).
      if (condition !== 'connect_failure' && this.#controller !== null && !policy.idempotentMethods.has(method)) return false;
    } else if (!policy.idempotentMethods.has(method)) return false;
    if (!replayable(this.#body) || ex.res.headersSent || ex.res.destroyed) return false;
    const now = performance.now();
    if (policy.deadlineMs > 0 && now - ex.startedAt >= policy.deadlineMs) return false;
    const next = new ForwardHandler(ex, this.#action, this.#finish, this.#body, this);
    const server = upstream.choose(ex, next);
    // No server of this region left: the next region (GSLB), so that a region failure costs a
    // retry, not an error. Not from this upstream's retry budget: the budget keeps retries from
    // piling onto a failing upstream, and this one goes elsewhere (into the next region's
    // circuit breaker, as a first try there).
    if (server === undefined) return this.#spillOver();
    if (!upstream.state.budget.withdraw(now, policy.budgetRatio, policy.budgetMinPerSecond)) return false;
    this.#handOver(next, server);
    return true;
  }

  /** No server can take the first try: 503, with Retry-After (RFC 9110 §10.2.3) when none is available at all. */
  #unplaceable(): void {
    this.#done = true;
    const ex = this.#ex;
    const upstream = this.#action.upstream;
    const noServer = upstream.available.length === 0;
    const error = new GatehouseError(noServer ? 'NO_SERVER' : 'OVERLOADED');
    // A response filter (a cache holding a stale response) may answer instead; it then finishes.
    if (rescueByFilter(ex, error)) this.#answered = true;
    else sendError(ex, error, noServer ? { 'retry-after': String(upstream.retryAfterSeconds()) } : undefined);
    this.#complete();
  }

  /** Refused before it held a slot: the circuit breaker is open, or the queue wait ran out. */
  refuse(code: ErrorCode): void {
    this.#done = true;
    const ex = this.#ex;
    if (ex.finished) return;
    const error = new GatehouseError(code);
    if (rescueByFilter(ex, error)) return;
    sendError(ex, error);
    this.#finish(ex);
  }

  dequeued(): void {
    if (this.#ex.finished) {
      // The client left while the slot was on its way.
      this.#action.upstream.state.release();
      return;
    }
    this.start();
  }

  expired(): void {
    this.refuse('QUEUE_TIMEOUT');
  }

  onRequestStart(controller: DispatchController): void {
    this.#controller = controller;
    if (this.#ex.res.destroyed && !this.#ex.finished) controller.abort(new GatehouseError('CLIENT_CLOSED'));
  }

  onResponseStart(
    _controller: DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx interim answers: 100 Continue was already given to the client by the listener.
    if (statusCode < 200) return;
    const ex = this.#ex;
    const now = performance.now();
    const server = this.#server as Server;
    const upstream = this.#action.upstream;
    server.state.observeLatency(now - this.#sentAt, now);
    server.state.onResponse(statusCode);
    // A retryable status (retries.retry_on) goes to another server; this answer drains unseen.
    if (statusCode >= 500 && upstream.retry.statuses.has(statusCode) && this.#retry(null)) return;
    ex.upstreamHeadersMs = now - ex.startedAt;
    const out = rewriteResponseHeaders(headers, ex.snapshot.hiding, upstream, ex.proto, ex.req.headers.host);
    if (this.#action.responseHeaders !== null) applyToRecord(this.#action.responseHeaders, out);
    if (upstream.sticky !== null && !this.pinned) upstream.sticky.pin(out, server, ex.proto);
    ex.status = statusCode;
    if (ex.responseFilters !== null) {
      const holdBack = heldBytes(ex, statusCode, out);
      if (holdBack > 0) {
        this.#held = new HeldHead(statusCode, out, holdBack, () => this.#releaseHead(false));
        return;
      }
    }
    this.#startResponse(statusCode, out);
  }

  /** Writes the head (through the response filters), and what was held back of the body. */
  #startResponse(statusCode: number, out: Record<string, string | string[]>): void {
    const ex = this.#ex;
    if (ex.responseFilters !== null) {
      const chain = applyResponseFilters(ex, statusCode, out, this);
      if (chain instanceof WholeBody) this.#whole = new WholeResponse(chain, statusCode, out);
      else if (chain !== null) {
        this.#sink = chain.head;
        this.#answered = chain.answered;
        if (chain.answered) return;
      }
    }
    const res = ex.res;
    // After the filters: a cache stores the response without them.
    addResponseFields(ex, out);
    // A body rewritten whole: its head goes out with it, at its end (#sendWhole).
    if (this.#whole !== null) return;
    if (ex.h2 && out['grpc-status'] !== undefined) {
      // A gRPC "Trailers-Only" answer (its status in the one HEADERS frame that ends the
      // stream): the head is kept until end() so that it goes out with END_STREAM too; sent
      // now, the client would wait for trailers that never come.
      res.statusCode = statusCode;
      for (const name in out) res.setHeader(name, out[name] as string | string[]);
      return;
    }
    res.writeHead(statusCode, out);
  }

  /**
   * Ends the hold: the body reached the filters' hold-back size, paused, or ended (`whole`: then
   * its length is known and is declared, so that a filter can tell a small body from a large one).
   */
  #releaseHead(whole: boolean): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    held.cancel();
    if (whole) held.headers['content-length'] = String(held.length);
    this.#startResponse(held.status, held.headers);
    const rewritten = this.#whole;
    if (rewritten !== null) {
      // A filter takes it whole only when its declared length (what was held) is within its limit.
      for (const chunk of held.chunks) rewritten.add(chunk);
      return;
    }
    if (this.#answered) {
      for (const chunk of held.chunks) this.#sink.write(chunk);
      return;
    }
    for (const chunk of held.chunks) {
      if (this.#sink === this.#ex.res) this.#ex.bytes += chunk.length;
      this.#sink.write(chunk);
    }
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.#superseded) return;
    const held = this.#held;
    if (held !== null) {
      if (held.add(chunk)) this.#releaseHead(false);
      return;
    }
    const whole = this.#whole;
    if (whole !== null) {
      // Only a backend that sends more than it declared gets here past the limit.
      if (!whole.add(chunk)) controller.abort(new GatehouseError('BAD_RESPONSE', 'response body longer than its Content-Length'));
      return;
    }
    noteBodyBytes(chunk.length);
    // With filters, bytes are counted where the chain reaches the client.
    if (this.#sink === this.#ex.res) this.#ex.bytes += chunk.length;
    if (!this.#sink.write(chunk)) {
      // A client that is gone will never drain: let go of the backend connection instead.
      if (this.#ex.res.destroyed) {
        controller.abort(new GatehouseError('CLIENT_CLOSED'));
        return;
      }
      controller.pause();
      this.#sink.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#done = true;
    if (this.#superseded) {
      this.#complete();
      return;
    }
    this.#releaseHead(true);
    if (this.#whole !== null) {
      this.#sendWhole(this.#whole);
      return;
    }
    const res = this.#ex.res;
    if (this.#sink !== res) {
      // Filtered bodies complete when the last filter has flushed into the response; trailers
      // are written by res.end() then (filters that change the body leave responses announcing
      // trailers alone).
      if (!this.#answered) addTrailers(res, trailers);
      this.#sink.end();
      return;
    }
    addTrailers(res, trailers);
    res.end();
    this.#complete();
  }

  /** The whole body has arrived: rewritten, it goes out with its head (or an error answer does). */
  #sendWhole(whole: WholeResponse): void {
    const ex = this.#ex;
    if (ex.res.destroyed) sendError(ex, new GatehouseError('CLIENT_CLOSED'));
    else {
      try {
        whole.send(ex);
      } catch (error: unknown) {
        sendError(ex, new GatehouseError('INTERNAL', String(error), { cause: error }));
      }
    }
    this.#complete();
  }

  /** The response filters' chain has ended or failed (FilterChainOwner). */
  filtersDone(error: Error | null): void {
    if (error !== null) {
      if (!this.#answered) sendError(this.#ex, error);
      // Nothing reads the upstream body any more; the reader went away, which is no server fault.
      if (!this.#done) this.#controller?.abort(new GatehouseError('CLIENT_CLOSED'));
    }
    if (this.#done) this.#complete();
  }

  onResponseError(_controller: DispatchController, error: Error): void {
    const headReceived = this.#done || this.#ex.upstreamHeadersMs >= 0;
    this.#done = true;
    if (this.#superseded) {
      // The drained answer of a retried status failed: the request has moved on.
      this.#complete();
      return;
    }
    const ex = this.#ex;
    const server = this.#server as Server;
    // Nothing was sent of a held response: the client gets an error answer instead.
    this.#held?.cancel();
    this.#held = null;
    if (this.#sink !== ex.res) this.#sink.destroy(error);
    if (this.#answered) {
      // The client was answered by a filter; only the body it was reading failed.
      if (!isClientClosed(error)) server.state.failures++;
      this.#complete();
      return;
    }
    const failure = ex.res.destroyed && !ex.res.writableFinished ? new GatehouseError('CLIENT_CLOSED') : error;
    if (!isClientClosed(failure)) {
      server.state.failures++;
      const caught = toGatehouseError(failure);
      // Passive health: a transport failure counts against the server (a client's fault does not).
      if (caught.kind.serverFault) server.state.onFailure(caught.code);
      if (!headReceived && this.#retry(caught)) {
        this.#complete();
        return;
      }
    }
    if (!headReceived && rescueByFilter(ex, failure)) {
      this.#answered = true;
      this.#complete();
      return;
    }
    // A gRPC head kept back by #startResponse was never sent: the client's stream is reset, as
    // after any head, rather than answered with a 502 that carries the server's grpc-status.
    if (!ex.res.headersSent && ex.res.hasHeader('grpc-status')) ex.res.destroy(failure);
    sendError(ex, failure);
    this.#complete();
  }

  #complete(): void {
    if (this.#completed) return;
    this.#completed = true;
    if (this.#server !== null) this.#server.state.inFlight--;
    // A try that a retry replaced ends here; the request goes on in the next one.
    if (this.#superseded) return;
    this.#action.upstream.state.release();
    // A filter that answered the client finishes the exchange when its answer is complete.
    if (!this.#answered) this.#finish(this.#ex);
  }
}

function isClientClosed(error: Error): boolean {
  return error instanceof GatehouseError && error.code === 'CLIENT_CLOSED';
}

/** Copies the upstream's trailers, if it sent any, onto the client's response. */
function addTrailers(res: Exchange['res'], trailers: Record<string, string | string[] | undefined>): void {
  for (const _name in trailers) {
    res.addTrailers(trailers as Record<string, string | string[]>);
    return;
  }
}

/** A body of unknown length that paused this long is decided on with what has arrived. */
const HOLD_PAUSE_MS = 20;

/**
 * How much of the body to see before the head is decided: the largest `holdBack` of the
 * response filters, for bodies of unknown length (chunked, without trailers) only; 0 for none.
 */
function heldBytes(ex: Exchange, status: number, headers: Record<string, string | string[]>): number {
  if (headers['content-length'] !== undefined || headers['trailer'] !== undefined) return 0;
  if (status === 204 || status === 304 || ex.req.method === 'HEAD') return 0;
  let most = 0;
  for (const filter of ex.responseFilters ?? []) if (filter.holdBack !== undefined) most = Math.max(most, filter.holdBack(ex, status, headers));
  return most;
}

/** A response head waiting for the first bytes of its body. */
class HeldHead {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly chunks: Buffer[] = [];
  length = 0;
  readonly #limit: number;
  readonly #onPause: () => void;
  #timer: NodeJS.Timeout;

  constructor(status: number, headers: Record<string, string | string[]>, limit: number, onPause: () => void) {
    this.status = status;
    this.headers = headers;
    this.#limit = limit;
    this.#onPause = onPause;
    this.#timer = setTimeout(onPause, HOLD_PAUSE_MS);
  }

  /** Keeps `chunk`; true when the hold-back size is reached. */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length >= this.#limit) return true;
    this.#timer.refresh();
    return false;
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }
}
