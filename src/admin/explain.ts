/**
 * The admin API's explain: for a method, URL and headers, which route would take the request and
 * why each other did not, the middlewares that would run, the action, the upstream and the server
 * its balancer would choose now, and whether the cache would answer. Read from the running
 * snapshot without changing it (the balancer's peek; no request is made). Off the hot path: the
 * route conditions are compiled again here, with words (routing/matchers.ts compileConditions).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { explainCache, type CacheVerdict } from '../cache/explain.ts';
import type { Exchange } from '../core/exchange.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { compileConditions } from '../routing/matchers.ts';
import { normalizeTarget } from '../routing/normalize-path.ts';
import { IpFilter } from '../middleware/ip-filter/ip-filter.ts';
import { clientKey } from '../middleware/ip-filter/ip-address.ts';
import type { Route } from '../routing/router.ts';
import { RequestInfo } from '../routing/request-info.ts';
import { isValidHost } from '../routing/request-target.ts';

/** What to explain: POST /explain's body. */
export interface ExplainQuery {
  readonly method: string;
  /** "http://host/path?q" (its host stands for Host) or "/path?q". */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The client's address (for hash on client_ip); 127.0.0.1 when not given. */
  readonly client?: string;
}

/** One route's verdict. */
export interface RouteVerdict {
  readonly name: string;
  readonly index: number;
  readonly matched: boolean;
  readonly reason: string;
}

/** The explain answer. */
export interface Explanation {
  readonly request: { readonly method: string; readonly host: string; readonly target: string };
  readonly route: { readonly name: string; readonly index: number } | null;
  readonly routes: readonly RouteVerdict[];
  readonly middlewares: readonly string[];
  /** forward, redirect, respond; "none" (404) when no route matches, "refused" (400) for a target the checks refuse. */
  readonly action: string;
  readonly redirect?: { readonly status: number; readonly to: string };
  readonly respond?: { readonly status: number };
  /** A gslb route: where the client is placed and the region that would serve it (null: residency allows none). */
  readonly gslb?: { readonly name: string; readonly mode: string; readonly country: string | null; readonly continent: string | null; readonly region: string | null };
  readonly upstream: string | null;
  /** host:port of the server the balancer would choose now; null when none can take it. */
  readonly server: string | null;
  /** The server came from the client's sticky cookie. */
  readonly sticky?: boolean;
  readonly cache: CacheVerdict;
  /** Whether the client would be let through (global and route access rules, bans); when a route matched. */
  readonly admission?: { readonly allowed: boolean; readonly reason: string };
}

/** The query in a POST /explain body, or what is wrong with it. */
export function parseExplainQuery(body: unknown): ExplainQuery | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'send a JSON object: { "method", "url", "headers", "client" }';
  const { method = 'GET', url, headers = {}, client } = body as Record<string, unknown>;
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) return '"method" must be an HTTP method such as GET';
  if (typeof url !== 'string' || url === '') return '"url" is required: "http://host/path?query" or "/path?query"';
  if (!url.startsWith('/') && !(URL.canParse(url) && /^https?:$/.test(new URL(url).protocol))) return `"url" must be an http(s) URL or start with "/": ${url}`;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return '"headers" must be an object of strings';
  for (const value of Object.values(headers)) if (typeof value !== 'string') return '"headers" must be an object of strings';
  if (client !== undefined && (typeof client !== 'string' || isIP(client) === 0)) return '"client" must be an IP address';
  return { method: method.toUpperCase(), url, headers: headers as Record<string, string>, ...(client === undefined ? {} : { client: client as string }) };
}

/** What `snapshot` would do with the request `query` describes; changes nothing. */
export async function explainRequest(snapshot: Snapshot, query: ExplainQuery): Promise<Explanation> {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(query.headers)) headers[name.toLowerCase()] = value;
  let target = query.url;
  let proto = 'http';
  if (!target.startsWith('/')) {
    // Absolute-form: its authority stands for Host (RFC 9112 §3.2.2).
    const url = new URL(target);
    headers.host = url.host;
    proto = url.protocol.slice(0, -1);
    target = `${url.pathname}${url.search}`;
  }
  const nothing = { middlewares: [], upstream: null, server: null };
  const host = headers.host ?? '';
  const normal = normalizeTarget(target, snapshot.protection.request.paths);
  if (normal === null || (host !== '' && !isValidHost(host))) {
    const why = normal === null ? 'the path is refused by protection.paths (400)' : `the Host "${host}" is not valid (400)`;
    return { request: { method: query.method, host, target }, route: null, routes: [], action: 'refused', ...nothing, cache: { would_answer: false, reason: why } };
  }
  const info = new RequestInfo(query.method, normal, headers);
  const routes = snapshot.router.routes;
  const configs = snapshot.config.routes;
  let chosen = -1;
  const verdicts: RouteVerdict[] = routes.map((route, index) => {
    if (chosen !== -1) return { name: route.name, index, matched: false, reason: `not tried: ${routes[chosen]?.name} matched first${route.matches(info) ? ' (this one would match too)' : ''}` };
    const matched = route.matches(info);
    if (matched) chosen = index;
    return { name: route.name, index, matched, reason: matched ? 'every condition holds' : whyNot(configs[index]?.match, info) };
  });
  const request = { method: info.method, host: info.host, target: normal };
  const route = routes[chosen];
  if (route === undefined) return { request, route: null, routes: verdicts, action: 'none', ...nothing, cache: { would_answer: false, reason: 'no route matches: 404' } };
  const client = query.client ?? '127.0.0.1';
  // What the balancer's key, the sticky cookie and the cache key read of an exchange, and nothing
  // else: explain builds no real request (no socket, no response) and runs no middleware.
  const probe = { req: { method: info.method, url: normal, headers }, info, peer: client, client, proto, snapshot, h2: false } as unknown as Exchange;
  const middlewares = route.middlewares.map((middleware) => middleware.name);
  const cacheMiddleware = snapshot.caches.middlewareFor(chosen);
  const cache = cacheMiddleware === null ? { would_answer: false, reason: 'the route has no cache' } : await explainCache(cacheMiddleware.route, probe);
  const base = { request, route: { name: route.name, index: chosen }, routes: verdicts, middlewares, cache, admission: admission(snapshot, route, client) };
  const action = route.action;
  switch (action.kind) {
    case 'redirect':
      return { ...base, action: 'redirect', redirect: { status: action.status, to: action.to }, upstream: null, server: null };
    case 'respond':
      return { ...base, action: 'respond', respond: { status: action.status }, upstream: null, server: null };
    case 'forward': {
      const { server, sticky } = action.upstream.peek(probe);
      return { ...base, action: 'forward', upstream: action.upstream.name, server: server === undefined ? null : hostPort(server.origin), ...(sticky ? { sticky } : {}) };
    }
    case 'gslb': {
      const gslb = action.gslb;
      const location = gslb.database.lookup(client);
      const region = gslb.pick(location, 0, gslb.mode === 'redirect');
      const placed = { name: gslb.name, mode: gslb.mode, country: location?.country || null, continent: location?.continent || null, region: region?.name ?? null };
      const forward = region === null || gslb.mode !== 'proxy' ? undefined : action.forwards[region.index];
      if (forward === undefined) return { ...base, action: 'gslb', gslb: placed, upstream: null, server: null };
      const { server, sticky } = forward.upstream.peek(probe);
      return { ...base, action: 'gslb', gslb: placed, upstream: forward.upstream.name, server: server === undefined ? null : hostPort(server.origin), ...(sticky ? { sticky } : {}) };
    }
    default:
      return action satisfies never;
  }
}

/** Would `client` pass the access rules and bans (the checks admission.ts and the route's ip_filter make)? */
function admission(snapshot: Snapshot, route: Route, client: string): NonNullable<Explanation['admission']> {
  const policy = snapshot.protection;
  if (policy.access !== null && !policy.access.allows(client)) return { allowed: false, reason: `${client} is refused by protection.access (403)` };
  const left = policy.state.bans.remaining(clientKey(client, policy.v6Prefix));
  if (left > 0) return { allowed: false, reason: `${client} is banned for ${Math.ceil(left / 1000)} s more (429)` };
  for (const middleware of route.middlewares) {
    if (middleware instanceof IpFilter && !middleware.allows(client)) return { allowed: false, reason: `${client} is refused by the route's access rules (403)` };
  }
  return { allowed: true, reason: `${client} passes the access rules and is not banned (rate limits not counted)` };
}

/** "host:port" of an origin, the port written even when it is the scheme's default (as the access log names servers). */
function hostPort(origin: string): string {
  const url = new URL(origin);
  return `${url.hostname}:${url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : url.port}`;
}

/** The first condition of a route that the request fails, in words. */
function whyNot(match: Parameters<typeof compileConditions>[0] | undefined, info: RequestInfo): string {
  if (match === undefined) return 'no match';
  for (const condition of compileConditions(match)) {
    if (!condition.test(info)) return `${condition.what}, but ${condition.actual(info)}`;
  }
  return 'no match';
}
