/** The admin listener: read-only JSON about the running proxy, plus a reload trigger. Keep it on loopback. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../config/units.ts';

/** What the admin API needs from the running proxy. */
export interface AdminTarget {
  status(): unknown;
  reload(): Promise<void>;
}

export class AdminListener {
  readonly #server: Server;
  readonly #address: string;

  constructor(address: string, target: AdminTarget) {
    this.#address = address;
    this.#server = createServer((req, res) => {
      void handle(req, res, target);
    });
  }

  async listen(): Promise<AddressInfo> {
    const hostPort = parseHostPort(this.#address);
    if (hostPort === undefined) throw new Error(`bad admin address ${this.#address}`);
    this.#server.listen(hostPort.port, hostPort.host);
    await once(this.#server, 'listening');
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, target: AdminTarget): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/healthz') return json(res, 200, { ok: true });
  if (req.method === 'GET' && path === '/status') return json(res, 200, target.status());
  if (req.method === 'POST' && path === '/reload') {
    try {
      await target.reload();
      return json(res, 200, { reloaded: true });
    } catch (error: unknown) {
      return json(res, 400, { reloaded: false, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return json(res, 404, { error: 'not found', endpoints: ['GET /healthz', 'GET /status', 'POST /reload'] });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
