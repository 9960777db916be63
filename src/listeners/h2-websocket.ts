/**
 * WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream (`:method CONNECT`, `:protocol
 * websocket`) is routed like the HTTP/1.1 handshake it stands for, then turned into an HTTP/1.1
 * Upgrade to the server, and the stream and the server's socket are joined. Servers keep speaking
 * WebSocket over HTTP/1.1; only the client side is HTTP/2.
 *
 * The handshakes differ (RFC 8441 §5): the HTTP/2 client sends no Sec-WebSocket-Key and expects a
 * 200, the server wants a key and answers 101 with Sec-WebSocket-Accept. Gatehouse makes the key,
 * checks the server's Accept against it, and answers the stream 200 without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Exchange } from '../core/exchange.ts';
import { addResponseFields } from '../core/response-fields.ts';
import { startTrace } from '../core/tracing/policy.ts';
import { GatehouseError } from '../core/errors.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { runMiddlewares } from '../middleware/pipeline.ts';
import { RequestInfo } from '../routing/request-info.ts';
import { openTunnel } from '../transport/tunnel.ts';
import { buildRequestHeaders } from '../upstream/request-headers.ts';
import { admit } from './admission.ts';
import { connectionOf } from './connection-guard.ts';
import { finishExchange, hostFromAuthority, type ListenerContext } from './dispatch.ts';
import { placeTunnel, settleTunnel, tunnelForward, tunnelResponseHeaders } from './upgrade.ts';
import { checkHttp2Request } from './request-checks.ts';
import { sendError } from './respond.ts';

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The node:http2 'connect' listener of a listener: extended CONNECT for WebSocket; any other CONNECT is refused. */
export function createH2WebSocketHandler(ctx: ListenerContext): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (h2req, h2res) => {
    const req = h2req as unknown as IncomingMessage;
    const res = h2res as unknown as ServerResponse;
    const stream = h2req.stream;
    const headers = req.headers;
    hostFromAuthority(headers);
    const snapshot = ctx.holder.current;
    const protection = snapshot.protection;
    const protocol = headers[':protocol'];
    // A plain CONNECT (a forward-proxy tunnel) is not offered; neither is any protocol but WebSocket.
    const rejected = typeof protocol !== 'string' || protocol.toLowerCase() !== 'websocket' ? 'BAD_REQUEST' : checkHttp2Request(req, protection.request);
    // Routed as the GET the HTTP/1.1 handshake is (RFC 8441 §5).
    const info = new RequestInfo('GET', req.url ?? '/', headers);
    const conn = connectionOf(req.socket);
    const peer = conn !== undefined ? conn.address : normalizeAddress(req.socket.remoteAddress);
    const ex = new Exchange(req, res, snapshot, info, peer, ctx.proto, true);
    startTrace(ex, snapshot.tracing);
    const finish = (status: number): void => {
      if (ex.finished) return;
      if (status !== 0) ex.status = status;
      finishExchange(ctx, ex);
    };
    if (!admit(ctx, ex, conn, rejected)) {
      finish(0);
      return;
    }
    const route = snapshot.router.find(info);
    ex.route = route;
    if (route !== undefined && route.middlewares.length > 0) {
      runMiddlewares(ex, route.middlewares, tunnel, () => finish(0));
      return;
    }
    tunnel();

    function tunnel(): void {
      const action = tunnelForward(ex);
      if (typeof action === 'string') {
        sendError(ex, new GatehouseError(action));
        finish(0);
        return;
      }
      const server = placeTunnel(ex, action);
      if (typeof server === 'number') {
        stream.respond(ownFields(ex, server), { endStream: true });
        finish(server);
        return;
      }
      const key = randomBytes(16).toString('base64');
      const expected = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
      const built = buildRequestHeaders(ex, action.requestHeaders);
      const fields: string[] = [];
      // Only Gatehouse's key goes to the server, so that only it can check the Accept.
      for (let i = 0; i < built.length; i += 2) if (built[i] !== 'sec-websocket-key') fields.push(built[i] as string, built[i + 1] as string);
      fields.push('sec-websocket-key', key);
      if (headers['sec-websocket-version'] === undefined) fields.push('sec-websocket-version', '13');
      const url = req.url ?? '/';
      openTunnel({
        pool: server.pool,
        servername: server.servername,
        path: action.rewritePath === null ? url : action.rewritePath(url, info.path),
        method: 'GET',
        protocol: 'websocket',
        headers: fields,
        headersTimeout: action.upstream.headersTimeout,
        client: stream,
        head: Buffer.alloc(0),
        responseHeaders: (upstreamHeaders) => tunnelResponseHeaders(ex, action, upstreamHeaders),
        answer: {
          accepted(upstreamHeaders, rewritten) {
            if (upstreamHeaders['sec-websocket-accept'] !== expected || stream.destroyed) return false;
            // `rewritten` has no connection-specific field left (RFC 9113 §8.2.2: rewriteResponseHeaders
            // drops hop-by-hop ones); the Accept belongs to the HTTP/1.1 handshake alone.
            const out: Record<string, string | string[]> = { ':status': '200' };
            for (const name in rewritten) if (name !== 'sec-websocket-accept') out[name] = rewritten[name] as string | string[];
            stream.respond(out);
            return true;
          },
          refused(status) {
            // Any 2xx would tell an HTTP/2 client the tunnel is open (RFC 8441 §5): a server that answered without switching is a bad gateway.
            if (!stream.headersSent) stream.respond(ownFields(ex, status >= 300 ? status : 502), { endStream: true });
            else stream.close();
          },
        },
        done: (status, error) => {
          settleTunnel(server.state, stream, status, error);
          // The access log says 200: what the HTTP/2 client saw for an open tunnel.
          finish(status === 101 ? 200 : status);
        },
      });
    }
  };
}

/** A refusal's head: the status and Gatehouse's own fields (core/response-fields.ts). */
function ownFields(ex: Exchange, status: number): Record<string, string | string[]> {
  const head: Record<string, string | string[]> = { ':status': String(status) };
  addResponseFields(ex, head);
  return head;
}
