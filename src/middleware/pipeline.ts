/**
 * The two extension points between routing and the action.
 *
 * - A Middleware runs before the action, in the route's order: it answers the request itself
 *   (deny, rate limit, cache hit) and does not call `next`, or calls `next()` to go on. A
 *   middleware that answers calls `finish(ex)` once its answer is complete (the access-log line).
 * - A ResponseFilter, added by a middleware with `ex.addResponseFilter()`, sees the upstream's
 *   response head and may replace the body stream (compression, storing into a cache), or take
 *   the response over and answer the client itself (a cache answering a 304 from its store).
 *
 * Filters run onion-style, like the middlewares that add them: the filter added last (by the
 * middleware nearest the action) sees the upstream response first, and its output is what the
 * filters added before it see. With the route order [cache, compress], compression happens
 * first and the cache stores the compressed body.
 *
 * Routes without middlewares skip all of this: the hot path of plain forwarding stays direct.
 */
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import type { Exchange } from '../core/exchange.ts';
import { toGatehouseError, type GatehouseError } from '../core/errors.ts';
import { failInternally } from '../listeners/respond.ts';
import type { HeaderOps } from './headers.ts';
import { asError } from '../core/caught.ts';

export type Next = () => void;

/** Ends an exchange the middleware answered: writes the access-log line (once; later calls do nothing). */
export type Finish = (ex: Exchange) => void;

export interface Middleware {
  /** For logs and errors. */
  readonly name: string;
  /**
   * Answer the request (then call `finish(ex)` when the answer is complete), or call `next()`.
   * May be async (a store look-up); a throw or rejection becomes an error answer in the dispatcher.
   */
  handle(ex: Exchange, next: Next, finish: Finish): void | Promise<void>;
}

export type ResponseHeaders = Record<string, string | string[]>;

/**
 * Returned by `onResponseHead` when the filter answers the client itself: nothing is written to
 * the client by the forward action, and the upstream body (after the inner filters' streams) is
 * written into `sink` (a cache entry being stored, or a stream that discards it). The filter calls
 * `finish(ex)` when its own answer is complete.
 */
export class Takeover {
  readonly sink: Writable;

  constructor(sink: Writable) {
    this.sink = sink;
  }
}

/**
 * Returned by `onResponseHead` by a filter that rewrites a small body of known length in one call
 * (compression in one synchronous zlib call). The body is collected whole and rewritten before the
 * head goes out, so the answer gets a Content-Length and leaves in one write; no stream is made.
 * One instance serves every request (it holds no per-request state).
 */
export abstract class WholeBody {
  /** The most bytes it takes: a filter returns it only for a body declared no longer. */
  abstract readonly limit: number;
  /** The new body; may throw (the client then gets an error answer: nothing was sent yet). */
  abstract rewrite(body: Buffer): Buffer;
}

export interface ResponseFilter {
  /**
   * For a body of unknown length: how many bytes the filter wants to have arrived before its
   * onResponseHead runs (0: none). A body that ends sooner gets a Content-Length first (so
   * compression can skip a tiny one); a body that pauses sooner is decided on as it is.
   */
  holdBack?(ex: Exchange, status: number, headers: ResponseHeaders): number;
  /**
   * Called once with the status and the headers about to be sent to the client (already
   * rewritten; may be edited in place). Returns a stream the body is to pass through, a Takeover,
   * a WholeBody (for a body of known length within its limit), or null.
   */
  onResponseHead(ex: Exchange, status: number, headers: ResponseHeaders): Transform | Takeover | WholeBody | null;
  /**
   * The upstream failed before a response head arrived (no server, connect failure, timeout).
   * Returns true when the filter answers instead (a cache serving a stale response), in which case
   * it calls `finish(ex)` itself; false lets the error answer go out.
   */
  onUpstreamError?(ex: Exchange, error: GatehouseError): boolean;
}

/**
 * Changes a middleware makes to the request sent upstream: a cache removes the client's
 * conditional and Range headers to fetch a whole response it can store, adds its own validators
 * to revalidate, and fetches GET for a HEAD request so that the answer can fill the cache.
 */
export interface UpstreamRequestEdits {
  /** Replaces the method; null keeps the client's. */
  readonly method: string | null;
  /** Header edits applied after the route's own `request_headers`; null for none. */
  readonly headers: HeaderOps | null;
}

/** Runs `middlewares` in order, then `action`; a throw or rejection is answered by failInternally. */
export function runMiddlewares(ex: Exchange, middlewares: readonly Middleware[], action: () => void, finish: Finish): void {
  let index = 0;
  const next: Next = () => {
    const middleware = middlewares[index++];
    try {
      if (middleware === undefined) action();
      else middleware.handle(ex, next, finish)?.catch((error: unknown) => failInternally(ex, error, finish));
    } catch (error: unknown) {
      failInternally(ex, error, finish);
    }
  };
  next();
}

/** The response filters' streams, joined and ending in the client's response or a takeover sink. */
export interface FilterChain {
  /** Where the upstream body is to be written. */
  readonly head: Writable;
  /** True when a filter took the response over: the forward action writes nothing to the client. */
  readonly answered: boolean;
}

/** What runs the filter chain: told when it has ended or failed. */
export interface FilterChainOwner {
  /** The chain has ended (null) or failed. */
  filtersDone(error: Error | null): void;
}

/**
 * Lets each filter of `ex` see the response head, innermost first, and joins the streams they
 * return into a chain ending in the client's response (or in a takeover's sink). Returns null when
 * no filter inserted anything, and a WholeBody when that is all that was inserted (the caller
 * collects the body and writes the rewritten one itself; `owner` is not told then). `owner` is
 * told once the chain has ended or failed (an object, not a callback: no closure per request).
 */
export function applyResponseFilters(
  ex: Exchange,
  status: number,
  headers: ResponseHeaders,
  owner: FilterChainOwner,
): FilterChain | WholeBody | null {
  const filters = ex.responseFilters ?? [];
  // The first filter's WholeBody, made a stream only when another filter or a takeover follows it
  // (alone, the common case, it is returned as it is: no stream, no array).
  let whole: WholeBody | null = null;
  let streams: Writable[] | null = null;
  let sink: Writable | null = null;
  for (let i = filters.length - 1; i >= 0; i--) {
    const result = (filters[i] as ResponseFilter).onResponseHead(ex, status, headers);
    if (result === null) continue;
    if (result instanceof Takeover) {
      sink = result.sink;
      break;
    }
    if (result instanceof WholeBody && whole === null && streams === null) {
      whole = result;
      continue;
    }
    streams ??= whole === null ? [] : [new WholeBodyStream(whole)];
    streams.push(result instanceof WholeBody ? new WholeBodyStream(result) : result);
  }
  if (streams === null) {
    if (sink === null) return whole;
    streams = whole === null ? [] : [new WholeBodyStream(whole)];
  }
  if (sink === null) {
    // Bytes sent downstream are counted after the filters (compressed size, not upstream size).
    const last = streams[streams.length - 1] as Transform;
    last.on('data', (chunk: Buffer) => {
      ex.bytes += chunk.length;
    });
  }
  const first = streams[0];
  if (first === undefined) {
    // A takeover with nothing before it: the sink is the chain.
    const only = sink as Writable;
    only.once('close', () => owner.filtersDone(only.errored ?? null));
    return { head: only, answered: true };
  }
  streams.push(sink ?? ex.res);
  join(streams, owner);
  return { head: first, answered: sink !== null };
}

/**
 * Pipes `stages` into one another and tells `owner` once: with null when the last has finished,
 * or with the first error or premature close, after destroying them all. (stream.pipeline does
 * the same, but creates and aborts an AbortController per call, which showed in profiles of the
 * compressed path; this is the subset the filter chain needs.)
 */
function join(stages: Writable[], owner: FilterChainOwner): void {
  let settled = false;
  const settle = (error: Error | null): void => {
    if (settled) return;
    settled = true;
    if (error !== null) for (const stage of stages) if (!stage.destroyed) stage.destroy();
    owner.filtersDone(error);
  };
  const last = stages.length - 1;
  stages.forEach((stage, i) => {
    if (i < last) (stage as Transform).pipe(stages[i + 1] as Writable);
    stage.once('error', settle);
    // A stage that closes before it is through (a client gone, a stream destroyed) fails the chain.
    stage.once('close', () => {
      const through = i < last ? (stage as unknown as Readable).readableEnded : stage.writableFinished;
      if (!through) settle(new Error('premature close'));
    });
  });
  (stages[last] as Writable).once('finish', () => settle(null));
}

/**
 * A body collected for a WholeBody, up to its limit, then rewritten: what the forward action does
 * for a WholeBody alone (WholeResponse), and what it does as a stage of a filter chain (below).
 */
export class WholeBodyInput {
  readonly #whole: WholeBody;
  #first: Buffer | null = null;
  #rest: Buffer[] | null = null;
  #length = 0;

  constructor(whole: WholeBody) {
    this.#whole = whole;
  }

  /** Keeps `chunk`; false when the body outgrows the filter's limit (it was longer than declared). */
  add(chunk: Buffer): boolean {
    this.#length += chunk.length;
    if (this.#length > this.#whole.limit) return false;
    if (this.#first === null) this.#first = chunk;
    else (this.#rest ??= []).push(chunk);
    return true;
  }

  /** The filter's new body for what was collected; throws what the filter threw. */
  rewrite(): Buffer {
    const first = this.#first ?? Buffer.alloc(0);
    return this.#whole.rewrite(this.#rest === null ? first : Buffer.concat([first, ...this.#rest], this.#length));
  }
}

/** A WholeBody as a stage of the chain: collects the body (up to its limit), rewrites it at the end. */
class WholeBodyStream extends Transform {
  readonly #input: WholeBodyInput;

  constructor(whole: WholeBody) {
    super();
    this.#input = new WholeBodyInput(whole);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // The declared length bounds what is held; a backend sending more is cut by the transport.
    if (this.#input.add(chunk)) callback();
    else callback(new Error('response body longer than its Content-Length'));
  }

  override _flush(callback: TransformCallback): void {
    try {
      callback(null, this.#input.rewrite());
    } catch (error: unknown) {
      callback(asError(error));
    }
  }
}

/**
 * Gives the response filters a chance to answer a request whose upstream failed before a
 * response head; true when one did (it then finishes the exchange itself).
 */
export function rescueByFilter(ex: Exchange, error: unknown): boolean {
  const filters = ex.responseFilters;
  // A client answered before the upstream request started (a background revalidation) is no obstacle.
  if (filters === null || (ex.res.headersSent && !ex.finished)) return false;
  const failure = toGatehouseError(error);
  if (failure.code === 'CLIENT_CLOSED') return false;
  for (let i = filters.length - 1; i >= 0; i--) {
    if ((filters[i] as ResponseFilter).onUpstreamError?.(ex, failure) === true) return true;
  }
  return false;
}

/** A Writable that drops everything: the sink of a takeover that does not need the upstream body. */
export function discardSink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}
