/**
 * The forward action: pick a server, send the request with its body streaming, and stream the
 * response back with backpressure in both directions.
 */
import { pipeline, type Transform, type Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { sendError } from '../listeners/respond.ts';
import { applyToRecord } from '../middleware/headers.ts';
import type { ResponseHeaders } from '../middleware/pipeline.ts';
import type { ForwardAction } from '../routing/actions.ts';
import { requestBody } from '../middleware/body-limit.ts';
import { buildRequestHeaders } from './request-headers.ts';
import { rewriteResponseHeaders } from './rewrite.ts';
import type { Server } from './server.ts';

type DispatchController = Parameters<Dispatcher.DispatchHandler['onRequestStart'] & {}>[0];
type FinishExchange = (ex: Exchange) => void;

export function forward(ex: Exchange, action: ForwardAction, finish: FinishExchange): void {
  const upstream = action.upstream;
  const server = upstream.balancer.pick();
  if (server === undefined) {
    sendError(ex, new GatehouseError('NO_SERVER'));
    finish(ex);
    return;
  }
  const body = requestBody(ex);
  if (body instanceof GatehouseError) {
    sendError(ex, body);
    finish(ex);
    return;
  }
  ex.server = server;
  server.inFlight++;
  server.requests++;
  const req = ex.req;
  const url = req.url as string;
  const handler = new ForwardHandler(ex, action, server, finish);
  server.pool.dispatch(
    {
      path: action.rewritePath === null ? url : action.rewritePath(url, ex.info.path),
      method: req.method as string,
      headers: buildRequestHeaders(ex, action.requestHeaders),
      body,
      headersTimeout: upstream.headersTimeout,
      bodyTimeout: upstream.bodyTimeout,
    },
    handler,
  );
}

/** Streams one upstream response into the client's response. */
class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #action: ForwardAction;
  readonly #server: Server;
  readonly #finish: FinishExchange;
  #controller: DispatchController | null = null;
  #done = false;
  #completed = false;
  /** Where body chunks go: the client's response, or the first response filter. */
  #sink: Writable;

  constructor(ex: Exchange, action: ForwardAction, server: Server, finish: FinishExchange) {
    this.#ex = ex;
    this.#action = action;
    this.#server = server;
    this.#finish = finish;
    this.#sink = ex.res;
    // A client that hangs up aborts the upstream request (and is never counted against the server).
    ex.res.once('close', () => {
      if (!this.#done) this.#controller?.abort(new GatehouseError('CLIENT_CLOSED'));
    });
  }

  onRequestStart(controller: DispatchController): void {
    this.#controller = controller;
    if (this.#ex.res.destroyed) controller.abort(new GatehouseError('CLIENT_CLOSED'));
  }

  onResponseStart(
    _controller: DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx interim answers: 100 Continue was already given to the client by the listener.
    if (statusCode < 200) return;
    const ex = this.#ex;
    ex.upstreamHeadersMs = performance.now() - ex.startedAt;
    const out = rewriteResponseHeaders(headers, ex.snapshot.hiding, this.#action.upstream, ex.proto, ex.req.headers.host);
    if (this.#action.responseHeaders !== null) applyToRecord(this.#action.responseHeaders, out);
    ex.status = statusCode;
    const filtered = ex.responseFilters === null ? null : this.#filterChain(statusCode, out);
    ex.res.writeHead(statusCode, out);
    if (filtered !== null) this.#sink = filtered;
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    this.#ex.bytes += chunk.length;
    if (!this.#sink.write(chunk)) {
      controller.pause();
      this.#sink.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#done = true;
    const res = this.#ex.res;
    if (this.#sink !== res) {
      // Filtered bodies complete when the last filter has flushed into the response.
      this.#sink.end();
      return;
    }
    for (const _name in trailers) {
      res.addTrailers(trailers as Record<string, string | string[]>);
      break;
    }
    res.end();
    this.#complete();
  }

  /** Lets each response filter insert a stream; returns the head of the chain, or null if none did. */
  #filterChain(status: number, headers: ResponseHeaders): Writable | null {
    const ex = this.#ex;
    const streams: Transform[] = [];
    for (const filter of ex.responseFilters ?? []) {
      const stream = filter.onResponseHead(ex, status, headers);
      if (stream !== null) streams.push(stream);
    }
    const head = streams[0];
    if (head === undefined) return null;
    pipeline([...streams, ex.res], (error) => {
      if (error) sendError(ex, error);
      if (this.#done) this.#complete();
    });
    return head;
  }

  onResponseError(_controller: DispatchController, error: Error): void {
    this.#done = true;
    const ex = this.#ex;
    if (this.#sink !== ex.res) this.#sink.destroy(error);
    const failure = ex.res.destroyed && !ex.res.writableFinished ? new GatehouseError('CLIENT_CLOSED') : error;
    if (!(failure instanceof GatehouseError && failure.code === 'CLIENT_CLOSED')) this.#server.failures++;
    sendError(ex, failure);
    this.#complete();
  }

  #complete(): void {
    if (this.#completed) return;
    this.#completed = true;
    this.#server.inFlight--;
    this.#finish(this.#ex);
  }
}
