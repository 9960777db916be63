/** HTTP/2 and HTTPS clients for tests: one request, the whole answer read. */
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { TestContext } from 'node:test';

export interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: IncomingHttpHeaders;
}

/** An HTTP/2 session (h2 over TLS for an https: URL, h2c with prior knowledge for http:), closed when the test ends. */
export async function h2Session(t: TestContext, origin: string, options: SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const session = connect(origin, options);
  session.on('error', () => {});
  t.after(() => {
    if (!session.destroyed) session.destroy();
  });
  await once(session, 'connect');
  return session;
}

/** One request on `session`. */
export async function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Response> {
  const stream = session.request({ ':method': 'GET', ':path': '/', ...headers }, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  const chunks: Buffer[] = [];
  let trailers: IncomingHttpHeaders = {};
  stream.on('trailers', (t) => (trailers = t));
  const [head] = (await once(stream, 'response')) as [IncomingHttpHeaders];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString(), trailers };
}

export interface HttpsResponse {
  readonly status: number;
  readonly headers: import('node:http').IncomingHttpHeaders;
  /** The fields as received, [name, value, ...] in order, repeated names kept apart. */
  readonly rawHeaders: readonly string[];
  readonly body: string;
  readonly alpn: string | false | null;
}

/** One HTTPS (HTTP/1.1) request on its own connection, trusting `ca`. */
export async function httpsGet(url: string, ca: string, options: { servername?: string; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
  const req = httpsRequest(url, { ca, agent: false, servername: options.servername, headers: options.headers });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const socket = res.socket as import('node:tls').TLSSocket | null;
  return { status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString(), alpn: socket?.alpnProtocol ?? null };
}
