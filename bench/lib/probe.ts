// Readiness polling and response checks over HTTP/1.1, plain or TLS.
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { gunzipSync } from 'node:zlib';
import type { Child } from './children.ts';

export interface ProbeResult {
  status: number;
  bodyBytes: number;
  /** The Content-Encoding of the answer, if any. */
  encoding: string | undefined;
  /** The body (kept only when asked for). */
  body: Buffer | null;
}

/**
 * One GET on a fresh connection; rejects on connection errors and timeouts. Over https the
 * certificate (the run's self-signed one) is not verified: the probe checks answers, not trust.
 */
export function probe(url: string, timeoutMs = 2000, headers: OutgoingHttpHeaders = {}, keepBody = false): Promise<ProbeResult> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs, headers, rejectUnauthorized: false }, (res) => {
      let bodyBytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (keepBody) chunks.push(chunk);
      });
      const encoding = res.headers['content-encoding'];
      res.once('end', () => resolve({ status: res.statusCode ?? 0, bodyBytes, encoding, body: keepBody ? Buffer.concat(chunks) : null }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

export class NotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotReadyError';
  }
}

/**
 * Poll `url` until it answers 200, the child exits, or `timeoutMs` passes.
 * The child's exit is checked between attempts so a crash fails fast.
 */
export async function waitUntilReady(url: string, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer';
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      const { code, signal } = await child.exited;
      throw new NotReadyError(`exited early (code ${code ?? '-'}, signal ${signal ?? '-'})`);
    }
    try {
      const { status } = await probe(url, 1000);
      if (status === 200) return;
      lastProblem = `HTTP ${status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new NotReadyError(`not ready after ${timeoutMs / 1000} s (last: ${lastProblem})`);
}

/** Check that `url` answers 200 with exactly `expectedBytes` of body. */
export async function expectBody(url: string, expectedBytes: number): Promise<void> {
  const { status, bodyBytes } = await probe(url);
  if (status !== 200 || bodyBytes !== expectedBytes) {
    throw new NotReadyError(`GET ${url} gave HTTP ${status} with ${bodyBytes} bytes, expected 200 with ${expectedBytes}`);
  }
}

/**
 * Check that `url`, asked with `headers` ("Name: value"), answers 200 with `expectedBytes` once
 * decoded, and with the Content-Encoding `encoding` (null: none).
 */
export async function expectAnswer(url: string, expectedBytes: number, headers: readonly string[], encoding: 'gzip' | null): Promise<void> {
  if (encoding === null && headers.length === 0) return expectBody(url, expectedBytes);
  const sent: OutgoingHttpHeaders = {};
  for (const line of headers) {
    const colon = line.indexOf(':');
    sent[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  const { status, encoding: got, body } = await probe(url, 2000, sent, true);
  if (status !== 200 || (got ?? null) !== encoding) {
    throw new NotReadyError(`GET ${url} gave HTTP ${status} with Content-Encoding ${got ?? 'none'}, expected 200 with ${encoding ?? 'none'}`);
  }
  const size = (encoding === 'gzip' ? gunzipSync(body as Buffer) : (body as Buffer)).length;
  if (size !== expectedBytes) throw new NotReadyError(`GET ${url} gave ${size} bytes once decoded, expected ${expectedBytes}`);
}
