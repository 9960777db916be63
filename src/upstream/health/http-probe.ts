/**
 * health_check type http: one request on a new connection; the status and optionally the body
 * decide. An https:// server is checked over TLS with the upstream's settings (trust, SNI, client
 * certificate), so that a check passes only where a request could pass.
 */
import { errorCodeOrMessage } from '../../core/caught.ts';
import { request, type ClientRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { BackendTls } from '../../config/backend-tls-files.ts';
import { connectOptionsFor } from '../../transport/backend-tls.ts';
import type { HealthProbe, ProbeOutcome, ProbeTarget } from './probe.ts';

/** The most body read when looking for `expect_body`. */
const MAX_BODY = 64 * 1024;

export interface HttpProbeOptions {
  readonly method: string;
  readonly path: string;
  /** Host header; the server's authority when null. */
  readonly host: string | null;
  /** Passing statuses, as [low, high] ranges. */
  readonly expectStatus: readonly (readonly [number, number])[];
  /** Text the body must contain; null when only the status counts. */
  readonly expectBody: string | null;
  /** TLS settings for https:// servers. */
  readonly tls: BackendTls;
}

export class HttpProbe implements HealthProbe {
  readonly #options: HttpProbeOptions;

  constructor(options: HttpProbeOptions) {
    this.#options = options;
  }

  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    return checkHttp1(server, this.#options, signal, null);
  }
}

/**
 * One HTTP/1.1 check of the server, on a new connection, or on `socket` (a TLS connection on which
 * the server chose HTTP/1.1 by ALPN, see Http2Probe), which the check then closes.
 */
export function checkHttp1(server: ProbeTarget, options: HttpProbeOptions, signal: AbortSignal, socket: Socket | null): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(outcome);
    };
    // A new connection each time (as HAProxy and nginx do): a check must not ride on a
    // connection the server would not accept any more, nor take one from the request pool.
    const req = send(server, options.tls, socket, {
      host: server.hostname,
      port: server.port,
      method: options.method,
      path: options.path,
      headers: { host: options.host ?? server.authority, 'user-agent': 'gatehouse-health-check', connection: 'close' },
      agent: false,
      signal,
    });
    req.on('error', (error: Error) => settle({ ok: false, detail: signal.aborted ? 'timeout' : errorCodeOrMessage(error) }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      judgeAnswer(status, res, options, settle);
      res.on('error', (error: Error) => settle({ ok: false, detail: signal.aborted ? 'timeout' : errorCodeOrMessage(error) }));
    });
    req.end();
  });
}

function send(server: ProbeTarget, tls: BackendTls, socket: Socket | null, options: RequestOptions): ClientRequest {
  if (socket !== null) {
    // Without an agent, node:http writes on createConnection's socket (an agent would open its own).
    const { agent: _none, ...rest } = options;
    return request({ ...rest, createConnection: () => socket });
  }
  // The SNI name is set (empty for none): node:https would otherwise take the Host header's.
  return server.secure ? httpsRequest({ ...options, ...connectOptionsFor(tls, server.hostname) }) : request(options);
}

/**
 * The verdict on an answer: its status must be expected and, when the check names one, its body
 * must hold the expected text within the first 64 KiB. `body` is the answer's body stream (an
 * HTTP/1.1 response or an HTTP/2 stream).
 */
export function judgeAnswer(status: number, body: Readable, options: HttpProbeOptions, settle: (outcome: ProbeOutcome) => void): void {
  if (!statusExpected(status, options.expectStatus)) {
    settle({ ok: false, detail: `status ${status} not expected` });
    return;
  }
  const expected = options.expectBody;
  if (expected === null) {
    settle({ ok: true, detail: String(status) });
    return;
  }
  let text = '';
  body.setEncoding('utf8');
  body.on('data', (chunk: string) => {
    text += chunk;
    if (text.includes(expected)) settle({ ok: true, detail: String(status) });
    else if (text.length >= MAX_BODY) settle({ ok: false, detail: 'expected body text not found' });
  });
  body.on('end', () => settle({ ok: false, detail: 'expected body text not found' }));
}

export function statusExpected(status: number, ranges: HttpProbeOptions['expectStatus']): boolean {
  for (const [low, high] of ranges) if (status >= low && status <= high) return true;
  return false;
}

