/**
 * The two extension points between routing and the action.
 *
 * - A Middleware runs before the action, in the route's order: it answers the request itself
 *   (deny, rate limit, cache hit) and does not call `next`, or calls `next()` to go on.
 * - A ResponseFilter, added by a middleware with `ex.addResponseFilter()`, sees the upstream's
 *   response head and may replace the body stream (compression, storing into a cache).
 *
 * Routes without middlewares skip all of this: the hot path of plain forwarding stays direct.
 */
import type { Transform } from 'node:stream';
import type { Exchange } from '../core/exchange.ts';

export type Next = () => void;

export interface Middleware {
  /** For logs and errors. */
  readonly name: string;
  /**
   * Answer the request, or call `next()`. May be async (a store look-up); a throw or rejection
   * becomes an error answer in the dispatcher.
   */
  handle(ex: Exchange, next: Next): void | Promise<void>;
}

export type ResponseHeaders = Record<string, string | string[]>;

export interface ResponseFilter {
  /**
   * Called once with the status and the headers about to be sent to the client (already
   * rewritten; may be edited in place). Returns a stream the body is to pass through, or null.
   */
  onResponseHead(ex: Exchange, status: number, headers: ResponseHeaders): Transform | null;
}

/** Runs `middlewares` in order, then `action`; errors go to `fail`. */
export function runMiddlewares(
  ex: Exchange,
  middlewares: readonly Middleware[],
  action: () => void,
  fail: (error: unknown) => void,
): void {
  let index = 0;
  const next: Next = () => {
    const middleware = middlewares[index++];
    try {
      if (middleware === undefined) action();
      else middleware.handle(ex, next)?.catch(fail);
    } catch (error: unknown) {
      fail(error);
    }
  };
  next();
}
