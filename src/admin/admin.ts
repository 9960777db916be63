/**
 * The admin listener and its router: JSON status, reload, server drain, bans, cache purges,
 * configuration changes (config-api.ts), explain (explain.ts) and the live dashboard (dashboard.ts,
 * live.ts). Each endpoint module answers a value; this file checks the token (auth.ts), writes the
 * answer and audits changes (audit.ts).
 * Keep it on loopback; any other address needs a token. See docs/admin-api.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Server as NetServerClass, type AddressInfo, type Server as NetServer } from 'node:net';
import { takeOver } from '../listeners/listener.ts';
import type { Logger } from 'pino';
import { sourceOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { parseHostPort } from '../config/units.ts';
import type { TrafficWindow } from '../core/recent-traffic.ts';
import { packageVersion } from '../core/version.ts';
import { listenError } from '../listeners/bind-error.ts';
import { audit, auditRefused, clientOf, isChange } from './audit.ts';
import { authorized, readToken, type TokenDigest } from './auth.ts';
import { CACHE_ENDPOINTS, handleCache, type CacheAdmin } from './cache.ts';
import { ConfigApi, CONFIG_ENDPOINTS } from './config-api.ts';
import { ConfigHistory } from './config-history.ts';
import { Dashboard, DASHBOARD_ENDPOINTS } from './dashboard.ts';
import { readBody } from './body.ts';
import { parseExplainQuery, type Explanation, type ExplainQuery } from './explain.ts';
import { PROTECTION_ENDPOINTS, handleBans, type ProtectionAdmin } from './protection.ts';
import { sendMetrics, type MetricsAnswer } from './metrics/endpoint.ts';
import { errorMessage } from '../core/caught.ts';

/** What an endpoint answers (sent as JSON). */
export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Extra response headers (an ETag). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * What the admin API needs from the running proxy: one Gatehouse, or the primary of several
 * worker threads (whose answers come as promises). Either tells the listener of every committed
 * reload (`AdminListener.committed`), so that the configuration history sees SIGHUP reloads too.
 */
export interface AdminTarget {
  status(): unknown;
  /** Reads the configuration file again, or moves to `next`: prepare, then commit or abort (every worker or none). */
  reload(next?: Config): Promise<void>;
  /** Drains a server (`on`) or puts it back; throws (or rejects) when there is no such upstream or server. */
  drain(upstream: string, server: string, on: boolean): unknown;
  /** Bans and the rest of the protection state (see admin/protection.ts). */
  protection(): ProtectionAdmin;
  /** The running caches: statistics and purges (see admin/cache.ts). */
  caches(): CacheAdmin;
  /** The last minute's requests, errors and latencies, second by second (the dashboard's graphs). */
  traffic(): TrafficWindow | Promise<TrafficWindow>;
  /** The file the configuration came from (applied configurations are written to it); undefined without one. */
  readonly configFile: string | undefined;
  /** What the running configuration would do with a request (explain.ts); with workers, one worker's view. */
  explain(query: ExplainQuery): Promise<Explanation>;
  /** Prometheus metrics for the whole proxy (admin/metrics/); null when `admin.metrics` is off. */
  metrics(): Promise<MetricsAnswer | null>;
}

/** Every endpoint, for the 404 answer and the OpenAPI test. */
export const ADMIN_ENDPOINTS = [
  'GET /healthz',
  'GET /status',
  'GET /metrics',
  'POST /reload',
  'POST /upstreams/{name}/servers/{server}/drain',
  'POST /upstreams/{name}/servers/{server}/undrain',
  ...PROTECTION_ENDPOINTS,
  ...CACHE_ENDPOINTS,
  ...CONFIG_ENDPOINTS,
  'POST /explain',
];

/** An explain query is a small JSON object. */
const MAX_EXPLAIN_BYTES = 64 * 1024;

/**
 * Binds the admin listener `config` names, for `target`; a failure says where the file sets the
 * address. Reads the token (a missing one stops the start) and the configuration history.
 * `inherited`: the admin socket a process being replaced handed over (an upgrade).
 */
export async function startAdminListener(config: Config, target: AdminTarget, logger: Logger, inherited?: NetServer): Promise<{ admin: AdminListener; address: AddressInfo }> {
  const settings = config.admin;
  if (settings === undefined) throw new Error('no admin block in the configuration');
  const token = await readToken(settings);
  const history = await ConfigHistory.open(config, settings.history, target.configFile, config.state_dir, (error) =>
    logger.warn({ error: errorMessage(error) }, 'the configuration history could not be read; it starts empty'),
  );
  const admin = new AdminListener(settings.address, { target, token, logger, configs: new ConfigApi(target, history, target.configFile) });
  try {
    return { admin, address: await admin.listen(inherited) };
  } catch (error: unknown) {
    throw listenError(error, settings.address, 'admin', sourceOf(config, ['admin', 'address']));
  }
}

/** What the router answers from. */
interface AdminContext {
  readonly target: AdminTarget;
  readonly token: TokenDigest;
  readonly logger: Logger;
  readonly configs: ConfigApi;
}

/** The admin HTTP listener: binds, answers through the router below, closes. */
export class AdminListener {
  readonly #server: Server;
  readonly #address: string;
  readonly #configs: ConfigApi;
  readonly #dashboard: Dashboard;

  constructor(address: string, context: AdminContext) {
    this.#address = address;
    this.#configs = context.configs;
    const dashboard = (this.#dashboard = new Dashboard(context.target));
    this.#server = createServer((req, res) => {
      handle(req, res, context, dashboard).catch((error: unknown) => {
        // A bad percent-escape in the path (URIError), a purge that failed: answer rather than crash.
        const message = errorMessage(error);
        if (res.headersSent) res.destroy();
        else json(res, error instanceof URIError ? 400 : 500, { error: message });
      });
    });
  }

  /** A reload committed `config` (SIGHUP, POST /reload or an apply): the history records it. */
  committed(config: Config): void {
    this.#configs.committed(config);
  }

  /** The listening server, to hand over to the process that replaces this one. */
  get server(): NetServer {
    return this.#server;
  }

  async listen(inherited?: NetServer): Promise<AddressInfo> {
    const hostPort = parseHostPort(this.#address);
    if (hostPort === undefined) throw new Error(`bad admin address ${this.#address}`);
    if (inherited === undefined) this.#server.listen(hostPort.port, hostPort.host);
    else takeOver(this.#server, inherited);
    await once(this.#server, 'listening');
    return this.#server.address() as AddressInfo;
  }

  /** Stops accepting (the socket was handed over); requests on open connections are answered. */
  stopAccepting(): void {
    NetServerClass.prototype.close.call(this.#server);
  }

  async close(): Promise<void> {
    this.#dashboard.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, context: AdminContext, dashboard: Dashboard): Promise<void> {
  const [path = '/', query = ''] = (req.url ?? '/').split('?');
  // The dashboard's page and files hold no data: a browser loads them without a token, then the page sends it.
  if (dashboard.serveFile(req, res, path)) return;
  // /healthz stays open: a load balancer's check carries no token, and the answer tells nothing.
  if (path !== '/healthz' && !authorized(req, context.token)) {
    if (isChange(req.method, path)) auditRefused(context.logger, clientOf(req, false), `${req.method} ${path}`);
    res.setHeader('www-authenticate', 'Bearer realm="gatehouse-admin"');
    return json(res, 401, { error: 'this admin API needs "Authorization: Bearer TOKEN"' });
  }
  if (dashboard.serveEvents(req, res, path)) return;
  // Prometheus text, not JSON (and no change to audit).
  if (req.method === 'GET' && path === '/metrics') {
    const metrics = await context.target.metrics();
    return metrics === null ? json(res, 404, { error: 'metrics are off (admin.metrics: false)' }) : sendMetrics(res, metrics);
  }
  const who = clientOf(req, context.token !== undefined);
  const answer = await route(req, path, query, context, who);
  json(res, answer.status, answer.body, answer.headers);
  if (isChange(req.method, path)) {
    // What changed (a version and its changes), else the answer itself: the ban, the count, the error.
    const summary = 'changed' in answer ? answer.changed : answer.body;
    audit(context.logger, who, `${req.method} ${path}${query === '' ? '' : `?${query}`}`, answer.status, summary);
  }
}

async function route(req: IncomingMessage, path: string, query: string, context: AdminContext, who: string): Promise<AdminAnswer & { changed?: unknown }> {
  const { target } = context;
  if (req.method === 'GET' && path === '/healthz') return { status: 200, body: { ok: true } };
  if (req.method === 'GET' && path === '/status') {
    const status = (await target.status()) as Record<string, unknown>;
    return { status: 200, body: { ...status, version: packageVersion(), config_version: context.configs.history.running.version } };
  }
  if (req.method === 'POST' && path === '/reload') {
    try {
      await target.reload();
      // Written to the history before the answer: a restart right after it finds the reload there.
      await context.configs.history.flushed().catch((error: unknown) => context.logger.error({ error: String(error) }, 'the configuration history could not be written'));
      return { status: 200, body: { reloaded: true, config_version: context.configs.history.running.version } };
    } catch (error: unknown) {
      return { status: 400, body: { reloaded: false, error: errorMessage(error) } };
    }
  }
  // POST /upstreams/{upstream}/servers/{index, host:port or URL-encoded URL}/drain (or /undrain)
  const drain = req.method === 'POST' ? /^\/upstreams\/([^/]+)\/servers\/([^/]+)\/(drain|undrain)$/.exec(path) : null;
  if (drain !== null) {
    try {
      const [, upstream, server, verb] = drain as unknown as [string, string, string, string];
      return { status: 200, body: await target.drain(decodeURIComponent(upstream), decodeURIComponent(server), verb === 'drain') };
    } catch (error: unknown) {
      return { status: 404, body: { error: errorMessage(error) } };
    }
  }
  const bans = handleBans(req, path, query, target.protection());
  if (bans !== null) return bans;
  const cache = handleCache(req, path, query, target.caches());
  if (cache !== null) return cache;
  const config = context.configs.handle(req, path, who);
  if (config !== null) return config;
  if (req.method === 'POST' && path === '/explain') return explain(req, target);
  // The dashboard's page and feed are listed too, though not JSON (nor in the OpenAPI file).
  return { status: 404, body: { error: 'not found', endpoints: [...ADMIN_ENDPOINTS, ...DASHBOARD_ENDPOINTS] } };
}

async function explain(req: IncomingMessage, target: AdminTarget): Promise<AdminAnswer> {
  const text = await readBody(req, MAX_EXPLAIN_BYTES);
  if (typeof text !== 'string') return text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { status: 400, body: { error: 'the body is not JSON: send { "method": "GET", "url": "/path", "headers": { "host": "..." } }' } };
  }
  const query = parseExplainQuery(body);
  if (typeof query === 'string') return { status: 400, body: { error: query } };
  return { status: 200, body: await target.explain(query) };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
