/** Real, scriptable backends on ephemeral loopback ports. */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface Backend {
  readonly server: Server;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP backend running `handler`; closed when the test ends. */
export async function startBackend(t: TestContext, handler: Handler): Promise<Backend> {
  const requests: IncomingMessage[] = [];
  return listen(t, createServer(recording(requests, handler)), 'http', requests);
}

/**
 * An HTTPS backend (node:https) running `handler`, with `tls` (cert, key, and for mTLS ca and
 * requestCert); its url is https://127.0.0.1:PORT. Closed when the test ends.
 */
export async function startHttpsBackend(t: TestContext, tls: HttpsOptions, handler: Handler): Promise<Backend> {
  const requests: IncomingMessage[] = [];
  const server = createHttpsServer(tls, recording(requests, handler));
  // Handshakes Gatehouse refuses (a wrong CA) end in errors here; the tests look at the proxy's side.
  server.on('tlsClientError', () => {});
  return listen(t, server, 'https', requests);
}

function recording(requests: IncomingMessage[], handler: Handler): Handler {
  return (req, res) => {
    requests.push(req);
    handler(req, res);
  };
}

/** Listens on an ephemeral loopback port; closed (connections and all) when the test ends. */
async function listen(t: TestContext, server: Server, scheme: 'http' | 'https', requests: IncomingMessage[]): Promise<Backend> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { server, port, url: `${scheme}://127.0.0.1:${port}`, requests, close };
}

/** A backend that answers with its name, the path and the headers it received, as JSON. */
export function echo(name = 'backend'): Handler {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

export interface RawBackend {
  readonly port: number;
  readonly url: string;
  /** Sockets accepted so far. */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/** A TCP server that does whatever `onConnection` does with each socket: hang, reset, send garbage. */
export async function startRawBackend(t: TestContext, onConnection: (socket: Socket) => void): Promise<RawBackend> {
  const sockets: Socket[] = [];
  const server: TcpServer = createTcpServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { port, url: `http://127.0.0.1:${port}`, sockets, close };
}

/** A port on loopback where nothing listens. */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
