/** Client helpers: plain requests through a fresh connection, and raw bytes over a socket. */
import { connect } from 'node:net';
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export interface SimpleResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: string;
  readonly trailers: NodeJS.Dict<string>;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer | Readable;
}

/** One request on its own connection (no agent), the whole body read as text. */
export async function request(url: string, options: RequestOptions = {}): Promise<SimpleResponse> {
  const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
  const body = options.body;
  if (body === undefined) req.end();
  else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
  else body.pipe(req);
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    body: Buffer.concat(chunks).toString(),
    trailers: res.trailers,
  };
}

/** Sends raw bytes and returns everything the server sent until it closed (or `timeoutMs`). */
export async function rawRequest(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(data);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
  });
  clearTimeout(timer);
  return Buffer.concat(chunks).toString('latin1');
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
