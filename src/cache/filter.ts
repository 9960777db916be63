/**
 * The cache's response filter, added on a miss or a revalidation: it decides at the response head
 * whether the response is stored, and then tees the body into the store while it streams to the
 * client (or takes the response over: a 304 answered from the refreshed entry, a stale response
 * served when the origin fails, a background revalidation nobody waits for).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { sendError } from '../listeners/respond.ts';
import { discardSink, Takeover, type Finish, type ResponseFilter, type ResponseHeaders } from '../middleware/pipeline.ts';
import type { Fill } from './collapse.ts';
import { prepareEntry, type CachedEntry } from './entry.ts';
import { buildMeta, extractTags, freshenMeta, validatorsOf } from './meta.ts';
import {
  isErrorStatus,
  staleIfErrorAllows,
  storagePlan,
  variantKey,
  varyNames,
  type HeaderMap,
  type RequestDirectives,
} from './policy.ts';
import { parseCacheControl } from './cache-control.ts';
import { answerFreshConditional, serveEntry } from './serve.ts';
import type { CacheRoute } from './middleware.ts';
import type { EntryWriter } from './store.ts';

/** What the filter knows about the request it serves. */
export interface FetchContext {
  readonly key: string;
  /** The stored response being revalidated, if any. */
  readonly stale: CachedEntry | undefined;
  readonly directives: RequestDirectives;
  /** RFC 9211 fwd parameter: uri-miss, vary-miss, miss, stale, request. */
  readonly fwd: string;
}

export class CacheFilter implements ResponseFilter {
  readonly #route: CacheRoute;
  readonly #ctx: FetchContext;
  readonly #finish: Finish;
  readonly #fill: Fill | null;
  /** Revalidating in the background: the client was already answered. */
  readonly #background: (() => void) | null;
  readonly #requestTime = Date.now();
  #settled = false;
  /** The upstream answered (or failed): from then on every path settles the fill itself. */
  #headSeen = false;

  constructor(route: CacheRoute, ctx: FetchContext, finish: Finish, fill: Fill | null, background: (() => void) | null) {
    this.#route = route;
    this.#ctx = ctx;
    this.#finish = finish;
    this.#fill = fill;
    this.#background = background;
  }

  /** Followers learn the outcome; a background revalidation is over. Once. */
  #settle(entry: CachedEntry | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#fill?.settle(entry);
    this.#background?.();
  }

  /** The client closed: if no response head came yet, followers must not wait for nothing. */
  abandon(): void {
    if (!this.#headSeen) this.#settle(null);
  }

  onResponseHead(ex: Exchange, status: number, headers: ResponseHeaders): Transform | Takeover | null {
    const route = this.#route;
    const shared = route.shared;
    const ctx = this.#ctx;
    const stale = ctx.stale;
    const now = Date.now();
    this.#headSeen = true;
    if (stale !== undefined && status === 304) return this.#revalidated(ex, stale, headers, now);
    if (stale !== undefined && isErrorStatus(status)) {
      // RFC 5861 §4: an error answer may be replaced by the stale response; a background
      // revalidation keeps the stale one as it is.
      if (this.#background !== null) {
        this.#settle(null);
        return new Takeover(discardSink());
      }
      if (staleIfErrorAllows(stale, ctx.directives, now)) {
        this.#settle(null);
        shared.counters.staleOnError++;
        this.#serveStale(ex, stale, `${route.statusName}; fwd=stale; fwd-status=${status}; detail=stale-if-error`, now);
        return new Takeover(discardSink());
      }
    }
    const tags = extractTags(headers);
    const fwd = stale === undefined ? `fwd=${ctx.fwd}` : `fwd=${ctx.fwd}; fwd-status=${status}`;
    const req = ex.req.headers;
    const plan = storagePlan(
      { method: 'GET', directives: parseCacheControl(req['cache-control']), authorization: req.authorization !== undefined },
      status,
      headers,
      route.policy,
      now,
    );
    const vary = plan.storable ? varyOf(headers, route.keyHeaders) : null;
    let writer: EntryWriter | null = null;
    let reason: string = plan.storable ? '' : plan.reason;
    if (plan.storable && vary !== null) {
      const meta = buildMeta({
        key: ctx.key,
        variant: variantKey(vary, req as HeaderMap),
        vary,
        status,
        headers,
        plan,
        requestTime: this.#requestTime,
        responseTime: now,
        tags,
      });
      const length = headers['content-length'];
      writer = shared.store.open(meta, typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : -1);
      if (writer === null) reason = 'too-large';
    }
    if (writer === null) {
      this.#settle(null);
      // Transient refusals (the request's no-store, an error status) do not mark the key.
      if (reason !== 'request-no-store' && status < 500) shared.passes.mark(ctx.key, now);
      // The resource changed its mind about caching: the stored response goes.
      if (stale !== undefined && status < 500) void shared.store.delete(ctx.key);
      prependStatus(headers, `${route.statusName}; ${fwd}; detail=${reason}`);
      if (this.#background !== null) return new Takeover(discardSink());
      if (answerFreshConditional(ex, status, headers, validatorsOf(headers))) {
        this.#finish(ex);
        return new Takeover(discardSink());
      }
      return null;
    }
    shared.passes.clear(ctx.key);
    const stored = writer.stored;
    void stored.then((entry) => {
      if (entry !== null) shared.counters.stored++;
      this.#settle(entry);
    });
    prependStatus(headers, `${route.statusName}; ${fwd}; stored`);
    if (this.#background !== null) return new Takeover(writer);
    if (answerFreshConditional(ex, status, headers, validatorsOf(headers))) {
      this.#finish(ex);
      return new Takeover(writer);
    }
    return new Tee(writer);
  }

  onUpstreamError(ex: Exchange, _error: GatehouseError): boolean {
    this.#headSeen = true;
    this.#settle(null);
    if (this.#background !== null) return true;
    const stale = this.#ctx.stale;
    const now = Date.now();
    if (stale === undefined || !staleIfErrorAllows(stale, this.#ctx.directives, now)) return false;
    this.#route.shared.counters.staleOnError++;
    return this.#serveStale(ex, stale, `${this.#route.statusName}; fwd=stale; detail=stale-if-error`, now);
  }

  /** The origin answered 304 to our validators: freshen the stored entry and answer from it. */
  #revalidated(ex: Exchange, stale: CachedEntry, headers: ResponseHeaders, now: number): Takeover {
    const route = this.#route;
    const shared = route.shared;
    shared.counters.notModified++;
    const freshened = freshenMeta(stale, headers, route.policy, this.#requestTime, now, ex.req.headers.authorization !== undefined);
    let entry = stale;
    let status = `${route.statusName}; fwd=${this.#ctx.fwd}; fwd-status=304`;
    if (freshened.meta === null) {
      // Valid for this request, but not to be kept.
      void shared.store.delete(stale.key);
      status += `; detail=${freshened.reason}`;
      this.#settle(null);
    } else {
      entry = prepareEntry(freshened.meta, stale.body);
      const updated = entry;
      void shared.store.update(stale, freshened.meta).then((kept) => this.#settle(kept ?? updated));
    }
    if (this.#background === null) this.#serveStale(ex, entry, status, now);
    return new Takeover(discardSink());
  }

  /** Answers from a stored entry inside the forward action (the filter took over). */
  #serveStale(ex: Exchange, entry: CachedEntry, cacheStatus: string, now: number): boolean {
    const served = serveEntry(ex, entry, cacheStatus, now, this.#finish);
    if (served === true) return true;
    const fail = (): void => {
      // The stored body went away meanwhile (a disk entry evicted): nothing to answer with.
      sendError(ex, new GatehouseError('BAD_RESPONSE', 'stored body gone'));
      this.#finish(ex);
    };
    if (served === false) {
      fail();
      return true;
    }
    void served.then((ok) => {
      if (!ok) fail();
    });
    return true;
  }
}

/** The names a variant is chosen by: Vary plus the configured key headers; null for Vary: *. */
function varyOf(headers: ResponseHeaders, keyHeaders: readonly string[]): string[] | null {
  const names = varyNames(headers['vary']);
  if (names === null) return null;
  if (keyHeaders.length === 0) return names;
  return [...new Set([...names, ...keyHeaders])].sort();
}

/** RFC 9211 §2: each cache adds its member at the front of the list. */
function prependStatus(headers: ResponseHeaders, value: string): void {
  const existing = headers['cache-status'];
  headers['cache-status'] = existing === undefined ? value : `${value}, ${Array.isArray(existing) ? existing.join(', ') : existing}`;
}

/**
 * Passes the body to the client and writes it into the store. A store that fails or gives up is
 * dropped without disturbing the client's stream; a slow store (disk) slows the stream down
 * rather than buffering without bound.
 */
class Tee extends Transform {
  #writer: EntryWriter | null;

  constructor(writer: EntryWriter) {
    super();
    this.#writer = writer;
    writer.once('error', () => {
      this.#writer = null;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const writer = this.#writer;
    if (writer === null || writer.destroyed || writer.write(chunk)) {
      callback(null, chunk);
      return;
    }
    this.push(chunk);
    const resume = (): void => {
      writer.off('drain', resume);
      writer.off('close', resume);
      callback();
    };
    writer.on('drain', resume);
    writer.on('close', resume);
  }

  override _flush(callback: TransformCallback): void {
    this.#writer?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An incomplete body is never stored.
    const writer = this.#writer;
    if (writer !== null && !writer.writableEnded) writer.destroy();
    callback(error);
  }
}
