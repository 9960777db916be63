/** Requests that ask to switch protocols (WebSocket): routed like any request, then tunnelled. */
import { ServerResponse, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Exchange } from '../core/exchange.ts';
import { addResponseFields, responseFieldLines } from '../core/response-fields.ts';
import { startTrace } from '../core/tracing/policy.ts';
import { GatehouseError } from '../core/errors.ts';
import { runMiddlewares } from '../middleware/pipeline.ts';
import { admit } from './admission.ts';
import { connectionOf } from './connection-guard.ts';
import { checkRequest } from './request-checks.ts';
import { sendError } from './respond.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { RequestInfo } from '../routing/request-info.ts';
import { openTunnel } from '../transport/tunnel.ts';
import { buildRequestHeaders } from '../upstream/request-headers.ts';
import { rewriteResponseHeaders } from '../upstream/rewrite.ts';
import type { Server } from '../upstream/server.ts';
import type { ServerState } from '../upstream/server-state.ts';
import type { ForwardAction } from '../routing/actions.ts';
import { tunnelAction } from '../gslb/action.ts';
import { finishExchange, type ListenerContext } from './dispatch.ts';

export function createUpgradeHandler(ctx: ListenerContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const snapshot = ctx.holder.current;
    const protection = snapshot.protection;
    // Only WebSocket is tunnelled (as listener.ts asks node:http): an h2c (or other) upgrade a
    // backend accepted would open a channel that bypasses the routes and checks here ("h2c smuggling").
    const rejected = checkRequest(req, protection.request) ?? (isWebSocketUpgrade(req) ? null : 'BAD_REQUEST');
    const info = new RequestInfo(req.method as string, req.url as string, req.headers);
    const conn = connectionOf(req.socket);
    const peer = conn !== undefined ? conn.address : normalizeAddress(req.socket.remoteAddress);
    // The response is written only when a check or a middleware answers instead of the tunnel; it
    // also lets the access log treat tunnels like requests.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => socket.end());
    const ex = new Exchange(req, res, snapshot, info, peer, ctx.proto);
    startTrace(ex, snapshot.tracing);
    const finish = (status: number): void => {
      if (ex.finished) return;
      ex.status = status;
      finishExchange(ctx, ex);
    };
    if (!admit(ctx, ex, conn, rejected)) {
      finish(ex.status);
      return;
    }
    const route = snapshot.router.find(info);
    ex.route = route;
    if (route !== undefined && route.middlewares.length > 0) {
      // Access rules and rate limits hold for WebSocket handshakes too.
      runMiddlewares(ex, route.middlewares, tunnel, () => finish(ex.status));
      return;
    }
    tunnel();

    function tunnel(): void {
      res.detachSocket(socket as Socket);
      const action = tunnelForward(ex);
      if (typeof action === 'string') {
        // Only forwarded routes can switch protocols; others get a plain refusal.
        const status = action === 'NO_ROUTE' ? 404 : 400;
        refuse(socket, ex, status);
        finish(status);
        return;
      }
      const server = placeTunnel(ex, action);
      if (typeof server === 'number') {
        refuse(socket, ex, server);
        finish(server);
        return;
      }
      const url = req.url as string;
      openTunnel({
        pool: server.pool,
        servername: server.servername,
        path: action.rewritePath === null ? url : action.rewritePath(url, info.path),
        method: req.method as string,
        protocol: req.headers.upgrade ?? 'websocket',
        headers: buildRequestHeaders(ex, action.requestHeaders),
        headersTimeout: action.upstream.headersTimeout,
        client: socket,
        head,
        responseHeaders: (headers) => tunnelResponseHeaders(ex, action, headers),
        fieldLines: responseFieldLines(ex, false),
        done: (status, error) => {
          settleTunnel(server.state, socket, status, error);
          finish(status);
        },
      });
    }
  };
}

/** A refusal written on the client's socket itself (the response let go of it for the tunnel), with Gatehouse's own fields. */
function refuse(socket: Duplex, ex: Exchange, status: 400 | 404 | 501 | 503): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-length: 0\r\nconnection: close\r\n${responseFieldLines(ex, false)}\r\n`);
}

/** The head a tunnel's client gets for its server's answer: rewritten as a forwarded answer's, with Gatehouse's own fields. */
export function tunnelResponseHeaders(
  ex: Exchange,
  action: ForwardAction,
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out = rewriteResponseHeaders(headers, ex.snapshot.hiding, action.upstream, ex.proto, ex.req.headers.host);
  addResponseFields(ex, out);
  return out;
}

/**
 * The forward action of the exchange's route, for a gslb route the region it chooses; otherwise
 * why no tunnel opens: no route, or one that cannot switch protocols.
 */
export function tunnelForward(ex: Exchange): ForwardAction | 'NO_ROUTE' | 'BAD_REQUEST' {
  const routed = ex.route?.action;
  if (routed === undefined) return 'NO_ROUTE';
  const action = routed.kind === 'gslb' ? (tunnelAction(ex, routed) ?? routed) : routed;
  return action.kind === 'forward' ? action : 'BAD_REQUEST';
}

/**
 * The server a tunnel goes to, placed like any request (health, drain, backups, sticky and hash
 * keys) without retries and counted in flight; or the status to refuse it with: 501 when the
 * upstream speaks HTTP/2 (tunnels are HTTP/1.1 Upgrades; WebSocket over HTTP/2 to servers, RFC
 * 8441, is not done), 503 when no server can take it.
 */
export function placeTunnel(ex: Exchange, action: ForwardAction): Server | 501 | 503 {
  if (action.upstream.http2) return 501;
  const server = action.upstream.choose(ex, null);
  if (server === undefined) return 503;
  ex.server = server;
  server.state.inFlight++;
  server.state.requests++;
  return server;
}

/** A tunnel's end on its server's counts: a failure unless it switched; an open one stays in flight until `client` closes. */
export function settleTunnel(state: ServerState, client: Duplex, status: number, error: Error | undefined): void {
  if (error !== undefined && status !== 101) state.failures++;
  if (status === 101) client.once('close', () => state.inFlight--);
  else state.inFlight--;
}

/** node:http's `shouldUpgradeCallback`: only WebSocket handshakes come to the upgrade handler. */
export function isWebSocketUpgrade(req: { headers: { upgrade?: string | undefined } }): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.length === 9 && upgrade.toLowerCase() === 'websocket';
}
