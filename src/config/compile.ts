/** Turns a validated configuration into a frozen snapshot: nothing on the hot path parses or defaults. */
import { compileCaches, type CacheSet } from '../cache/compile.ts';
import { acquireRouteTraffic, releaseRouteTraffic, RequestMetrics } from '../core/metrics/record.ts';
import type { Registry } from '../core/registry.ts';
import { compileTracing, releaseTracing } from '../core/tracing/policy.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { compileForwarding } from '../middleware/forwarded.ts';
import { compileHeaderOps } from '../middleware/headers.ts';
import { compileCompress } from '../middleware/compress/middleware.ts';
import type { Middleware } from '../middleware/pipeline.ts';
import { compileProtection, compileRoutesProtection, releaseProtection } from '../middleware/protection.ts';
import { compilePathRewrite, type Action } from '../routing/actions.ts';
import { compileMatch } from '../routing/matchers.ts';
import { Router, type Route } from '../routing/router.ts';
import { compileHiding } from '../upstream/rewrite.ts';
import { Upstream } from '../upstream/upstream.ts';
import { nextRegion } from '../gslb/action.ts';
import { Gslb } from '../gslb/regions.ts';
import { routeName, type Config, type RouteConfig } from './schema.ts';

export function compileSnapshot(config: Config, registry: Registry): Snapshot {
  // First, so that a list file that cannot be read fails the configuration before anything else is held.
  const protection = compileProtection(config, registry);
  const guards = compileRoutesProtection(config, protection, registry);
  const upstreams = new Map<string, Upstream>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    upstreams.set(name, new Upstream(name, upstream, registry));
  }
  const gslb = new Map<string, Gslb>();
  let caches: CacheSet;
  try {
    for (const [name, block] of Object.entries(config.gslb)) gslb.set(name, new Gslb(name, block, upstreams, registry));
    caches = compileCaches(config, registry);
  } catch (error: unknown) {
    // A store that cannot open (a disk cache directory in use), a GeoIP database that cannot be read: give back what is held.
    for (const block of gslb.values()) block.release(registry);
    for (const upstream of upstreams.values()) upstream.release(registry);
    releaseProtection(protection, registry);
    throw error;
  }
  const routes: Route[] = config.routes.map((route, i) => {
    const name = routeName(route, i);
    return Object.freeze({
      name,
      matches: compileMatch(route.match),
      middlewares: [...(guards[i] ?? []), ...acceleration(config, route, caches.middlewareFor(i))],
      action: compileAction(route, upstreams, gslb),
      traffic: acquireRouteTraffic(registry, name, route.upstream ?? ''),
    });
  });
  return Object.freeze({
    config,
    router: new Router(routes),
    upstreams,
    gslb,
    forwarding: compileForwarding(config, protection.trusted),
    hiding: compileHiding(config),
    maxBodySize: config.limits.max_body_size,
    protection,
    caches,
    metrics: config.admin !== undefined && config.admin.metrics ? new RequestMetrics(registry.unrouted) : null,
    tracing: compileTracing(config, protection.trusted, registry),
  });
}

/**
 * The cache and compression middlewares of a route, after protection (a refused request is never
 * answered from the cache). The cache comes first (outside compression): a hit is answered before
 * compression runs at all, and on a miss the response is compressed before the cache sees it (the
 * filters run inside out), so compressed variants are stored, one per encoding (Vary), and a
 * repeated request is not compressed again.
 */
function acceleration(config: Config, route: RouteConfig, cache: Middleware | null): Middleware[] {
  const compress = compileCompress(config.compress, route);
  const out: Middleware[] = [];
  if (cache !== null) out.push(cache);
  if (compress !== null) out.push(compress);
  return out;
}

/** Gives back what the snapshot holds in the registry. */
export function retireSnapshot(snapshot: Snapshot, registry: Registry): void {
  for (const upstream of snapshot.upstreams.values()) upstream.release(registry);
  for (const block of snapshot.gslb.values()) block.release(registry);
  releaseProtection(snapshot.protection, registry);
  snapshot.caches.release(registry);
  // The keys compileSnapshot acquired, worked out the same way.
  snapshot.config.routes.forEach((route, i) => releaseRouteTraffic(registry, routeName(route, i), route.upstream ?? ''));
  releaseTracing(snapshot.tracing, registry);
}

function compileAction(route: RouteConfig, upstreams: ReadonlyMap<string, Upstream>, gslb: ReadonlyMap<string, Gslb>): Action {
  const responseHeaders = compileHeaderOps(route.response_headers);
  if (route.redirect !== undefined) {
    return { kind: 'redirect', status: route.redirect.status, to: route.redirect.to, keepQuery: route.redirect.keep_query, responseHeaders };
  }
  if (route.respond !== undefined) {
    return {
      kind: 'respond',
      status: route.respond.status,
      body: Buffer.from(route.respond.body),
      contentType: route.respond.content_type,
      responseHeaders,
    };
  }
  if (route.gslb !== undefined) {
    const block = gslb.get(route.gslb);
    // The loader checked the reference; reaching this is a bug.
    if (block === undefined) throw new Error(`route refers to unknown gslb block ${route.gslb}`);
    const rewritePath = compilePathRewrite(route);
    const requestHeaders = compileHeaderOps(route.request_headers);
    const forwards = block.regions.map((region) =>
      Object.freeze({ kind: 'forward' as const, upstream: region.upstream, rewritePath, requestHeaders, responseHeaders, spill: nextRegion }),
    );
    return { kind: 'gslb', gslb: block, forwards, responseHeaders };
  }
  const upstream = upstreams.get(route.upstream ?? '');
  // The loader checked the reference; reaching this is a bug.
  if (upstream === undefined) throw new Error(`route refers to unknown upstream ${String(route.upstream)}`);
  return {
    kind: 'forward',
    upstream,
    rewritePath: compilePathRewrite(route),
    requestHeaders: compileHeaderOps(route.request_headers),
    responseHeaders,
    spill: null,
  };
}
