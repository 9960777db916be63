/** One entry per request: read the snapshot once, route, run the action, log when done. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessLog } from '../core/access-log.ts';
import { Exchange } from '../core/exchange.ts';
import { GatehouseError, type ErrorCode } from '../core/errors.ts';
import type { SnapshotHolder } from '../core/snapshot.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { RequestInfo } from '../routing/request-info.ts';
import type { Action, RedirectAction } from '../routing/actions.ts';
import { runMiddlewares } from '../middleware/pipeline.ts';
import { forward } from '../upstream/forward.ts';
import { failInternally, hasBody, sendError, sendSimple } from './respond.ts';
import { resolveClient, screenRequest } from './admission.ts';
import type { BodyRateWatch } from './body-rate.ts';
import { connectionOf } from './connection-guard.ts';
import { checkRequest } from './request-checks.ts';

/** What every request on a listener shares. */
export interface ListenerContext {
  readonly holder: SnapshotHolder;
  /** The same for every listener; a reload that changes `access_log` swaps what is behind it. */
  readonly accessLog: AccessLog;
  /** "http" or "https". */
  readonly proto: string;
  /** True while shutting down: answers carry Connection: close. */
  draining: boolean;
}

export function createRequestHandler(
  ctx: ListenerContext,
  bodyWatch: BodyRateWatch | null = null,
): (req: IncomingMessage, res: ServerResponse) => void {
  const finish = (ex: Exchange): void => {
    if (ex.finished) return;
    ex.finished = true;
    ctx.accessLog.write(ex);
  };
  return (req, res) => {
    const snapshot = ctx.holder.current;
    const protection = snapshot.protection;
    // Framing, Host and target checks; may put req.url in normal form, so before anything reads it.
    const rejected = checkRequest(req, protection.request);
    const info = new RequestInfo(req.method as string, req.url as string, req.headers);
    const conn = connectionOf(req.socket);
    const peer = conn !== undefined ? conn.address : normalizeAddress(req.socket.remoteAddress);
    const ex = new Exchange(req, res, snapshot, info, peer, ctx.proto);
    if (protection.resolveClient) resolveClient(ex, conn, protection);
    // On the last request a connection may carry, node:http writes Connection: close but keeps the
    // socket open until the keep-alive timeout; not keeping it alive makes it close after this answer.
    if (ctx.draining || (res as { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached === true) {
      res.shouldKeepAlive = false;
    }
    try {
      if (rejected !== null) {
        rejectRequest(ex, rejected);
        finish(ex);
        return;
      }
      if (protection.screen && !screenRequest(ex, conn, protection)) {
        finish(ex);
        return;
      }
      const route = snapshot.router.find(info);
      ex.route = route;
      if (route === undefined) {
        sendError(ex, new GatehouseError('NO_ROUTE'));
        finish(ex);
        return;
      }
      if (bodyWatch !== null && protection.bodyMinRate > 0 && hasBody(req)) {
        bodyWatch.add(ex, protection.bodyMinRate, protection.bodyGrace, protection.state.counters);
      }
      if (route.middlewares.length === 0) runAction(ex, route.action, finish);
      else runMiddlewares(ex, route.middlewares, () => runAction(ex, route.action, finish), finish);
    } catch (error: unknown) {
      failInternally(ex, error, finish);
    }
  };
}

/** A request refused by checkRequest: answered, and the connection closed (its framing cannot be trusted). */
function rejectRequest(ex: Exchange, code: ErrorCode): void {
  ex.snapshot.protection.state.counters.rejected_requests++;
  ex.res.shouldKeepAlive = false;
  sendError(ex, new GatehouseError(code));
}

/** The route's terminal step. */
function runAction(ex: Exchange, action: Action, finish: (ex: Exchange) => void): void {
  switch (action.kind) {
    case 'forward':
      forward(ex, action, finish);
      return;
    case 'redirect':
      sendSimple(ex, action.status, '', { location: redirectTarget(action, ex.info) }, action.responseHeaders);
      break;
    case 'respond':
      sendSimple(ex, action.status, action.body, { 'content-type': action.contentType }, action.responseHeaders);
      break;
    default:
      action satisfies never;
  }
  finish(ex);
}

function redirectTarget(action: RedirectAction, info: RequestInfo): string {
  if (!action.keepQuery || info.rawQuery === '') return action.to;
  // RFC 3986 §3: the query goes before a fragment, and a "?" inside the fragment starts no query.
  const hash = action.to.indexOf('#');
  const base = hash === -1 ? action.to : action.to.slice(0, hash);
  const fragment = hash === -1 ? '' : action.to.slice(hash);
  return `${base}${base.includes('?') ? '&' : '?'}${info.rawQuery}${fragment}`;
}
