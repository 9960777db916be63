/** Turns a validated configuration into a frozen snapshot: nothing on the hot path parses or defaults. */
import type { Registry } from '../core/registry.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { compileForwarding } from '../middleware/forwarded.ts';
import { compileHeaderOps } from '../middleware/headers.ts';
import { compilePathRewrite, type Action } from '../routing/actions.ts';
import { compileMatch } from '../routing/matchers.ts';
import { Router, type Route } from '../routing/router.ts';
import { compileHiding } from '../upstream/rewrite.ts';
import { Upstream } from '../upstream/upstream.ts';
import type { Config, RouteConfig } from './schema.ts';

export function compileSnapshot(config: Config, registry: Registry): Snapshot {
  const upstreams = new Map<string, Upstream>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    upstreams.set(name, new Upstream(name, upstream, registry));
  }
  const routes: Route[] = config.routes.map((route, i) =>
    Object.freeze({
      name: route.name ?? `route-${i}`,
      matches: compileMatch(route.match),
      middlewares: [],
      action: compileAction(route, upstreams),
    }),
  );
  return Object.freeze({
    config,
    router: new Router(routes),
    upstreams,
    forwarding: compileForwarding(config),
    hiding: compileHiding(config),
    maxBodySize: config.limits.max_body_size,
  });
}

/** Gives back what the snapshot holds in the registry. */
export function retireSnapshot(snapshot: Snapshot, registry: Registry): void {
  for (const upstream of snapshot.upstreams.values()) upstream.release(registry);
}

function compileAction(route: RouteConfig, upstreams: ReadonlyMap<string, Upstream>): Action {
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
  const upstream = upstreams.get(route.upstream ?? '');
  // The loader checked the reference; reaching this is a bug.
  if (upstream === undefined) throw new Error(`route refers to unknown upstream ${String(route.upstream)}`);
  return {
    kind: 'forward',
    upstream,
    rewritePath: compilePathRewrite(route),
    requestHeaders: compileHeaderOps(route.request_headers),
    responseHeaders,
  };
}
