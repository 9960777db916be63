/**
 * HTTP/2 to clients: a node:http2 server that never listens itself. The listener hands it the
 * connections that chose h2 (by ALPN on TLS, or by the connection preface with h2c), and its
 * requests go through the same dispatch as HTTP/1.1 ones (node's compatibility API).
 *
 * The defences (docs/security.md), each bounding what one connection can cost the others:
 * - concurrent streams, header list size and count: SETTINGS sent to the client, enforced by nghttp2;
 * - rapid reset (CVE-2023-44487): nghttp2's RST_STREAM rate limit, and a count of streams the client
 *   cancels before their answer is complete (Envoy's "premature resets"); past the limit the
 *   connection is closed with ENHANCE_YOUR_CALM;
 * - CONTINUATION, SETTINGS and PING floods: nghttp2's limits (header block size, settings entries,
 *   outstanding pings and acks), which end the session;
 * - a client that never opens its flow-control window: a stream with data it cannot send for
 *   `send_timeout` is reset; a connection's buffers are bounded by `max_session_memory`;
 * - an idle connection (no stream open) is closed after `limits.keepalive_timeout`.
 */
import { constants, createServer, Http2ServerResponse, type Http2Server, type Http2ServerRequest, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Config } from '../config/schema.ts';
import type { Http2Config } from '../config/listener-schema.ts';

/**
 * node:http2's compatibility response is no Writable and has no `destroyed`, which the request
 * path reads (as on node:http's response) to tell that the client went away: without it, an answer
 * to a stream the client had reset was written into the void and waited for a 'drain' that never
 * came, holding its backend connection for good (a burst of cancelled streams froze the proxy).
 */
if (!('destroyed' in Http2ServerResponse.prototype)) {
  Object.defineProperty(Http2ServerResponse.prototype, 'destroyed', {
    configurable: true,
    get(this: Http2ServerResponse): boolean {
      const stream = this.stream as ServerHttp2Stream | undefined;
      return stream === undefined || stream.destroyed;
    },
  });
}

export type Http2RequestHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/** Counters of what the defences did, for the status API. */
export interface Http2Counters {
  sessions: number;
  premature_reset_closes: number;
  send_timeouts: number;
  session_errors: number;
}

/** Per-session bookkeeping for the premature-reset count. */
interface SessionLoad {
  opened: number;
  cancelled: number;
  /** Streams open now. */
  active: number;
}

const SESSION_LOAD = Symbol('gatehouse.h2load');
type TrackedSession = ServerHttp2Session & { [SESSION_LOAD]?: SessionLoad };

export class Http2Front {
  readonly server: Http2Server;
  readonly sessions = new Set<ServerHttp2Session>();
  readonly counters: Http2Counters = { sessions: 0, premature_reset_closes: 0, send_timeouts: 0, session_errors: 0 };
  #settings: Http2Config;
  #idleTimeout: number;

  /** `onConnect` takes CONNECT streams (node:http2 answers them 405 without one): WebSocket over HTTP/2. */
  constructor(settings: Http2Config, limits: Config['limits'], onRequest: Http2RequestHandler, onConnect?: Http2RequestHandler) {
    this.#settings = settings;
    this.#idleTimeout = limits.keepalive_timeout;
    this.server = createServer(
      {
        settings: {
          maxConcurrentStreams: settings.max_concurrent_streams,
          initialWindowSize: settings.initial_window_size,
          maxHeaderListSize: limits.max_header_size,
          // RFC 8441: WebSocket over HTTP/2 (extended CONNECT).
          enableConnectProtocol: true,
        },
        // Pseudo-header fields count as pairs too.
        maxHeaderListPairs: limits.max_header_count + 5,
        // node:http2 takes megabytes.
        maxSessionMemory: Math.max(1, Math.ceil(settings.max_session_memory / 1024 ** 2)),
        // nghttp2's own rapid-reset guard, a backstop behind the premature-reset count: a burst of
        // cancels, then this many a second.
        streamResetBurst: Math.max(100, settings.max_premature_resets * 4),
        streamResetRate: 33,
        maxSessionRejectedStreams: 100,
        maxSessionInvalidFrames: 100,
        maxOutstandingPings: 10,
        maxSettings: 32,
      },
      onRequest,
    );
    if (onConnect !== undefined) this.server.on('connect', onConnect);
    this.server.on('session', (session: ServerHttp2Session) => this.#track(session));
    this.server.on('stream', (stream: ServerHttp2Stream) => this.#watch(stream));
    this.server.on('sessionError', () => this.counters.session_errors++);
  }

  /** Settings a reload may change; they apply to connections accepted from now on. */
  apply(settings: Http2Config, limits: Config['limits']): void {
    this.#settings = settings;
    this.#idleTimeout = limits.keepalive_timeout;
  }

  /** Hands a connection that chose h2 to the server. */
  accept(socket: import('node:net').Socket): void {
    this.server.emit('connection', socket);
  }

  /** Graceful close of every session (GOAWAY: no new streams, those open finish). */
  closeAll(): void {
    for (const session of this.sessions) if (!session.closed) session.close();
  }

  /** Closes sessions with no open stream (used while draining). */
  closeIdle(): void {
    for (const session of this.sessions as Set<TrackedSession>) {
      if (!session.closed && (session[SESSION_LOAD]?.active ?? 0) === 0) session.close();
    }
  }

  /** Cuts every session at once. */
  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
  }

  #track(session: TrackedSession): void {
    this.counters.sessions++;
    this.sessions.add(session);
    session[SESSION_LOAD] = { opened: 0, cancelled: 0, active: 0 };
    session.once('close', () => this.sessions.delete(session));
    session.on('error', () => {});
    // An idle connection is closed; node calls this only while no stream is active.
    if (this.#idleTimeout > 0) session.setTimeout(this.#idleTimeout, () => session.close());
  }

  #watch(stream: ServerHttp2Stream): void {
    const session = stream.session as TrackedSession | undefined;
    const load = session?.[SESSION_LOAD];
    if (load !== undefined) {
      load.opened++;
      load.active++;
      stream.once('close', () => load.active--);
    }
    stream.on('aborted', () => {
      if (load === undefined || session === undefined) return;
      load.cancelled++;
      const limit = this.#settings.max_premature_resets;
      if (load.cancelled >= limit && load.cancelled * 2 > load.opened && !session.destroyed) {
        this.counters.premature_reset_closes++;
        session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
        session.destroy();
      }
    });
    const sendTimeout = this.#settings.send_timeout;
    if (sendTimeout > 0) {
      stream.setTimeout(sendTimeout, () => {
        // Only a stream with an answer it cannot send is cut: a quiet one (a long poll) is not.
        if (stream.writableLength > 0 || stream.bufferSize > 0) {
          this.counters.send_timeouts++;
          stream.close(constants.NGHTTP2_CANCEL);
        }
      });
    }
  }
}
