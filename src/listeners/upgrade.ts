/** Requests that ask to switch protocols (WebSocket): routed like any request, then tunnelled. */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Exchange } from '../core/exchange.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { RequestInfo, isRoutable } from '../routing/request-info.ts';
import { openTunnel } from '../transport/tunnel.ts';
import { buildRequestHeaders } from '../upstream/request-headers.ts';
import { rewriteResponseHeaders } from '../upstream/rewrite.ts';
import type { ListenerContext } from './dispatch.ts';

export function createUpgradeHandler(ctx: ListenerContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const snapshot = ctx.holder.current;
    const info = new RequestInfo(req.method as string, req.url as string, req.headers);
    // The response object is never written: it only lets the access log treat tunnels like requests.
    const ex = new Exchange(req, new ServerResponse(req), snapshot, info, normalizeAddress(req.socket.remoteAddress), ctx.proto);
    const finish = (status: number): void => {
      ex.status = status;
      ex.finished = true;
      ctx.accessLog.write(ex);
    };
    if (!isRoutable(info, req.rawHeaders)) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      finish(400);
      return;
    }
    const route = snapshot.router.find(info);
    ex.route = route;
    const action = route?.action;
    if (action?.kind !== 'forward') {
      // Only forwarded routes can switch protocols; others get a plain refusal.
      const status = action === undefined ? 404 : 400;
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      finish(status);
      return;
    }
    const server = action.upstream.balancer.pick();
    if (server === undefined) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      finish(503);
      return;
    }
    ex.server = server;
    server.inFlight++;
    server.requests++;
    const url = req.url as string;
    openTunnel({
      pool: server.pool,
      path: action.rewritePath === null ? url : action.rewritePath(url, info.path),
      method: req.method as string,
      protocol: req.headers.upgrade ?? 'websocket',
      headers: buildRequestHeaders(ex, action.requestHeaders),
      headersTimeout: action.upstream.headersTimeout,
      client: socket,
      head,
      responseHeaders: (headers) =>
        rewriteResponseHeaders(headers, snapshot.hiding, action.upstream, ex.proto, req.headers.host),
      done: (status, error) => {
        if (error !== undefined && status !== 101) server.failures++;
        if (status === 101) socket.once('close', () => server.inFlight--);
        else server.inFlight--;
        finish(status);
      },
    });
  };
}
