/** One entry per request: read the snapshot once, route, run the action, log when done. */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AccessLog } from '../core/access-log.ts';
import { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { recordFinished } from '../core/metrics/record.ts';
import { startTrace } from '../core/tracing/policy.ts';
import type { SnapshotHolder } from '../core/snapshot.ts';
import type { TrafficRecorder } from '../core/recent-traffic.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { RequestInfo } from '../routing/request-info.ts';
import type { Action, RedirectAction } from '../routing/actions.ts';
import { runMiddlewares } from '../middleware/pipeline.ts';
import { forward } from '../upstream/forward.ts';
import { runGslb } from '../gslb/action.ts';
import { failInternally, hasBody, sendError, sendSimple } from './respond.ts';
import type { HttpsPolicy } from './https-policy.ts';
import { admit } from './admission.ts';
import type { BodyRateWatch } from './body-rate.ts';
import { connectionOf } from './connection-guard.ts';
import { checkHttp2Request, checkRequest } from './request-checks.ts';
import type { Http01Challenges } from './tls/acme/http-01.ts';

/** What every request on a listener shares. */
export interface ListenerContext {
  readonly holder: SnapshotHolder;
  /** The same for every listener; a reload that changes `access_log` swaps what is behind it. */
  readonly accessLog: AccessLog;
  /** Per-second aggregates for the live dashboard; the same for every listener. */
  readonly traffic: TrafficRecorder;
  /** "http" or "https". */
  readonly proto: string;
  /** True while shutting down: answers carry Connection: close. */
  draining: boolean;
  /** `redirect_https` and `hsts` of the listener's settings (a reload replaces it). */
  https: HttpsPolicy;
  /** On plain listeners: the ACME HTTP-01 challenges to answer before routing; null on TLS ones. */
  readonly challenges: Http01Challenges | null;
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The handler of a listener's HTTP/1.1 requests. */
export function createRequestHandler(ctx: ListenerContext, bodyWatch: BodyRateWatch | null = null): RequestHandler {
  return handlerFor(ctx, bodyWatch, false);
}

/**
 * The handler of a listener's HTTP/2 requests: the same path as HTTP/1.1 once :authority stands
 * in for a missing Host (RFC 9113 §8.3.1), so that routing, rewriting and logs read one field.
 */
export function createHttp2Handler(ctx: ListenerContext, bodyWatch: BodyRateWatch | null = null): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  const handle = handlerFor(ctx, bodyWatch, true);
  return (req, res) => {
    hostFromAuthority(req.headers);
    // The compatibility objects have every member of IncomingMessage and ServerResponse that the
    // request path uses; the few that are node:http's own are only touched when `ex.h2` is false.
    handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  };
}

/** RFC 9113 §8.3.1: an HTTP/2 request's :authority stands in for a missing Host. */
export function hostFromAuthority(headers: IncomingHttpHeaders): void {
  if (headers.host === undefined) {
    const authority = headers[':authority'];
    if (authority !== undefined) headers.host = authority as string;
  }
}

/** Ends an exchange, once: its access-log line, its metrics and the dashboard's figures (requests and tunnels alike). */
export function finishExchange(ctx: ListenerContext, ex: Exchange): void {
  if (ex.finished) return;
  ex.finished = true;
  ctx.accessLog.write(ex);
  recordFinished(ex);
  ctx.traffic.record(ex);
}

function handlerFor(ctx: ListenerContext, bodyWatch: BodyRateWatch | null, h2: boolean): RequestHandler {
  const finish = (ex: Exchange): void => finishExchange(ctx, ex);
  return (req, res) => {
    const snapshot = ctx.holder.current;
    const protection = snapshot.protection;
    // Framing, Host and target checks; may put req.url in normal form, so before anything reads it.
    const rejected = h2 ? checkHttp2Request(req, protection.request) : checkRequest(req, protection.request);
    const info = new RequestInfo(req.method as string, req.url as string, req.headers);
    const conn = connectionOf(req.socket);
    const peer = conn !== undefined ? conn.address : normalizeAddress(req.socket.remoteAddress);
    const ex = new Exchange(req, res, snapshot, info, peer, ctx.proto, h2);
    startTrace(ex, snapshot.tracing);
    // On the last request a connection may carry, node:http writes Connection: close but keeps the
    // socket open until the keep-alive timeout; not keeping it alive makes it close after this answer.
    if (ctx.draining || (res as { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached === true) {
      res.shouldKeepAlive = false;
    }
    try {
      if (!admit(ctx, ex, conn, rejected)) {
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
      if (bodyWatch !== null && protection.bodyMinRate > 0 && hasBody(req, h2)) {
        bodyWatch.add(ex, protection.bodyMinRate, protection.bodyGrace, protection.state.counters);
      }
      if (route.middlewares.length === 0) runAction(ex, route.action, finish);
      else runMiddlewares(ex, route.middlewares, () => runAction(ex, route.action, finish), finish);
    } catch (error: unknown) {
      failInternally(ex, error, finish);
    }
  };
}

/** The route's terminal step. */
function runAction(ex: Exchange, action: Action, finish: (ex: Exchange) => void): void {
  switch (action.kind) {
    case 'forward':
      forward(ex, action, finish);
      return;
    case 'gslb':
      runGslb(ex, action, finish);
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
