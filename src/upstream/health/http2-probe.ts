/**
 * health_check type http for upstreams that speak HTTP/2 (protocol h2 or h2c): the same check as
 * HttpProbe, over a new HTTP/2 connection (h2c with prior knowledge, or TLS with ALPN and the
 * upstream's TLS settings), since such servers (gRPC ones) may not answer HTTP/1.1 at all. Over
 * TLS it offers h2 then http/1.1, as the request pool does: a server that picks http/1.1 is
 * checked with HTTP/1.1 on that connection, as its requests go.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { BackendTls } from '../../config/backend-tls-files.ts';
import { connectOptionsFor } from '../../transport/backend-tls.ts';
import { errorCodeOrMessage } from '../../core/caught.ts';
import { checkHttp1, judgeAnswer, type HttpProbeOptions } from './http-probe.ts';
import type { HealthProbe, ProbeOutcome, ProbeTarget } from './probe.ts';

export class Http2Probe implements HealthProbe {
  readonly #options: HttpProbeOptions;

  constructor(options: HttpProbeOptions) {
    this.#options = options;
  }

  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    const options = this.#options;
    return checkOverHttp2(
      server,
      options.tls,
      signal,
      (session, settle) => {
        const stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: options.method,
          [constants.HTTP2_HEADER_PATH]: options.path,
          [constants.HTTP2_HEADER_AUTHORITY]: options.host ?? server.authority,
          'user-agent': 'gatehouse-health-check',
        });
        stream.on('error', (error: Error) => settle({ ok: false, detail: streamFailure(error) }));
        stream.on('response', (headers) => {
          const status = Number(headers[constants.HTTP2_HEADER_STATUS] ?? 0);
          judgeAnswer(status, stream, options, settle);
        });
        stream.end();
      },
      (socket) => checkHttp1(server, options, signal, socket),
    );
  }
}

/** Settles a check once; later calls are ignored. */
export type Settle = (outcome: ProbeOutcome) => void;

/**
 * Runs one check over a new HTTP/2 connection to the server (never one of the request pool's):
 * h2c with prior knowledge, or TLS with the upstream's settings. `send` makes the request on the
 * session and settles with the verdict; the connection is closed once settled, an abort (the
 * timeout) settles as "timeout", and the promise never rejects. Over TLS, ALPN offers h2 alone,
 * or h2 then http/1.1 when `http1` is given: it then checks a server that picks HTTP/1.1 on
 * the connection it handed over.
 */
export function checkOverHttp2(
  server: ProbeTarget,
  tls: BackendTls,
  signal: AbortSignal,
  send: (session: ClientHttp2Session, settle: Settle) => void,
  http1?: (socket: TLSSocket) => Promise<ProbeOutcome>,
): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ ok: false, detail: 'timeout' });
      return;
    }
    let settled = false;
    let session: ClientHttp2Session | undefined;
    let socket: TLSSocket | undefined;
    const settle: Settle = (outcome) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      session?.destroy();
      socket?.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => settle({ ok: false, detail: 'timeout' });
    signal.addEventListener('abort', onAbort);
    const host = server.hostname.includes(':') ? `[${server.hostname}]` : server.hostname;
    const start = (options: { createConnection?: () => TLSSocket }): void => {
      session = connect(`${server.secure ? 'https' : 'http'}://${host}:${server.port}`, options);
      session.on('error', (error: Error) => settle({ ok: false, detail: errorCodeOrMessage(error) }));
      send(session, settle);
    };
    if (!server.secure) {
      start({});
      return;
    }
    const tlsSocket = tlsConnect({
      ...connectOptionsFor(tls, server.hostname),
      host: server.hostname,
      port: server.port,
      ALPNProtocols: http1 === undefined ? ['h2'] : ['h2', 'http/1.1'],
    });
    socket = tlsSocket;
    tlsSocket.on('error', (error: Error) => settle({ ok: false, detail: errorCodeOrMessage(error) }));
    tlsSocket.once('secureConnect', () => {
      if (settled) return;
      if (tlsSocket.alpnProtocol === 'h2' || http1 === undefined) {
        start({ createConnection: () => tlsSocket });
        return;
      }
      // The server chose HTTP/1.1 (or named no protocol, which undici takes as HTTP/1.1 too).
      settled = true;
      signal.removeEventListener('abort', onAbort);
      void http1(tlsSocket).then(resolve);
    });
  });
}

/** A stream cut by its session's failure (ERR_HTTP2_STREAM_CANCEL) carries that failure (ECONNREFUSED) as its cause. */
export function streamFailure(error: Error): string {
  return errorCodeOrMessage(error.cause instanceof Error ? error.cause : error);
}
