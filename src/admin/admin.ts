/** The admin listener: JSON status, reload, server drain, bans and cache purges (see the endpoint list below). Keep it on loopback. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Server as NetServerClass, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { sourceOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { parseHostPort } from '../config/units.ts';
import { listenError } from '../listeners/bind-error.ts';
import { PROTECTION_ENDPOINTS, handleBans, type ProtectionAdmin } from './protection.ts';
import { CACHE_ENDPOINTS, handleCache, type CacheAdmin } from './cache.ts';

/** What an endpoint answers (sent as JSON). */
export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * What the admin API needs from the running proxy: one Gatehouse, or the primary of several
 * worker threads (whose answers come as promises).
 */
export interface AdminTarget {
  status(): unknown;
  reload(): Promise<void>;
  /** Drains a server (`on`) or puts it back; throws (or rejects) when there is no such upstream or server. */
  drain(upstream: string, server: string, on: boolean): unknown;
  /** Bans and the rest of the protection state (see admin/protection.ts). */
  protection(): ProtectionAdmin;
  /** The running caches: statistics and purges (see admin/cache.ts). */
  caches(): CacheAdmin;
}

/**
 * Binds the admin listener `config` names, for `target`; a failure says where the file sets the
 * address. `inherited`: the admin socket a process being replaced handed over (an upgrade).
 */
export async function startAdminListener(config: Config, target: AdminTarget, inherited?: NetServer): Promise<{ admin: AdminListener; address: AddressInfo }> {
  const address = config.admin?.address ?? '';
  const admin = new AdminListener(address, target);
  try {
    return { admin, address: await admin.listen(inherited) };
  } catch (error: unknown) {
    throw listenError(error, address, 'admin', sourceOf(config, ['admin', 'address']));
  }
}

export class AdminListener {
  readonly #server: Server;
  readonly #address: string;

  constructor(address: string, target: AdminTarget) {
    this.#address = address;
    this.#server = createServer((req, res) => {
      handle(req, res, target).catch((error: unknown) => {
        // A bad percent-escape in the path (URIError), a purge that failed: answer rather than crash.
        const message = error instanceof Error ? error.message : String(error);
        if (res.headersSent) res.destroy();
        else json(res, error instanceof URIError ? 400 : 500, { error: message });
      });
    });
  }

  /** The listening server, to hand over to the process that replaces this one. */
  get server(): NetServer {
    return this.#server;
  }

  async listen(inherited?: NetServer): Promise<AddressInfo> {
    const hostPort = parseHostPort(this.#address);
    if (hostPort === undefined) throw new Error(`bad admin address ${this.#address}`);
    if (inherited === undefined) this.#server.listen(hostPort.port, hostPort.host);
    else {
      // As listeners/listener.ts takes a listening socket over.
      this.#server.listen(inherited);
      inherited.on('connection', (socket: Socket) => this.#server.emit('connection', socket));
    }
    await once(this.#server, 'listening');
    return this.#server.address() as AddressInfo;
  }

  /** Stops accepting (the socket was handed over); requests on open connections are answered. */
  stopAccepting(): void {
    NetServerClass.prototype.close.call(this.#server);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, target: AdminTarget): Promise<void> {
  const [path = '/', query = ''] = (req.url ?? '/').split('?');
  if (req.method === 'GET' && path === '/healthz') return json(res, 200, { ok: true });
  if (req.method === 'GET' && path === '/status') return json(res, 200, await target.status());
  if (req.method === 'POST' && path === '/reload') {
    try {
      await target.reload();
      return json(res, 200, { reloaded: true });
    } catch (error: unknown) {
      return json(res, 400, { reloaded: false, error: error instanceof Error ? error.message : String(error) });
    }
  }
  // POST /upstreams/{upstream}/servers/{index, host:port or URL-encoded URL}/drain (or /undrain)
  const drain = req.method === 'POST' ? /^\/upstreams\/([^/]+)\/servers\/([^/]+)\/(drain|undrain)$/.exec(path) : null;
  if (drain !== null) {
    try {
      const [, upstream, server, verb] = drain as unknown as [string, string, string, string];
      return json(res, 200, await target.drain(decodeURIComponent(upstream), decodeURIComponent(server), verb === 'drain'));
    } catch (error: unknown) {
      return json(res, 404, { error: error instanceof Error ? error.message : String(error) });
    }
  }
  const bans = handleBans(req, path, query, target.protection());
  if (bans !== null) return json(res, bans.status, bans.body);
  const cache = handleCache(req, path, query, target.caches());
  if (cache !== null) {
    const answer = await cache;
    return json(res, answer.status, answer.body);
  }
  return json(res, 404, {
    error: 'not found',
    endpoints: ['GET /healthz', 'GET /status', 'POST /reload', 'POST /upstreams/{name}/servers/{server}/drain', 'POST /upstreams/{name}/servers/{server}/undrain', ...PROTECTION_ENDPOINTS, ...CACHE_ENDPOINTS],
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
