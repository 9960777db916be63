/**
 * health_check type http for upstreams that speak HTTP/2 (protocol h2 or h2c): the same check as
 * HttpProbe, over a new HTTP/2 connection (h2c with prior knowledge, or TLS with ALPN h2 and the
 * upstream's TLS settings), since such servers (gRPC ones) may not answer HTTP/1.1 at all.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { BackendTls } from '../../config/backend-tls-files.ts';
import { connectOptionsFor } from '../../transport/backend-tls.ts';
import { describe, judgeAnswer, type HttpProbeOptions } from './http-probe.ts';
import type { HealthProbe, ProbeOutcome, ProbeTarget } from './probe.ts';

/** The most body read when looking for `expect_body`. */

export class Http2Probe implements HealthProbe {
  readonly #options: HttpProbeOptions;

  constructor(options: HttpProbeOptions) {
    this.#options = options;
  }

  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    const options = this.#options;
    return new Promise((resolve) => {
      let settled = false;
      let session: ClientHttp2Session | undefined;
      const settle = (outcome: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        session?.destroy();
        resolve(outcome);
      };
      const onAbort = (): void => settle({ ok: false, detail: 'timeout' });
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort);
      session = openSession(server, options.tls);
      session.on('error', (error: Error) => settle({ ok: false, detail: describe(error) }));
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
    });
  }
}

/**
 * A new HTTP/2 connection to the server for one check (never one of the request pool's): h2c with
 * prior knowledge, or TLS with ALPN h2 and the upstream's TLS settings.
 */
export function openSession(server: ProbeTarget, tls: BackendTls): ClientHttp2Session {
  const host = server.hostname.includes(':') ? `[${server.hostname}]` : server.hostname;
  const origin = `${server.secure ? 'https' : 'http'}://${host}:${server.port}`;
  return connect(origin, server.secure ? { ...connectOptionsFor(tls, server.hostname), ALPNProtocols: ['h2'] } : {});
}

/** A stream cut by its session's failure (ERR_HTTP2_STREAM_CANCEL) carries that failure (ECONNREFUSED) as its cause. */
export function streamFailure(error: Error): string {
  return describe(error.cause instanceof Error ? error.cause : error);
}
