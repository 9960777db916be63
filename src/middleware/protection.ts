/**
 * Compiles `protection:`, `limits:` and each route's `access` and `rate_limits` into the frozen
 * parts of a snapshot: what the connection guard decides at accept, what dispatch screens per
 * request, and the route middlewares. Everything that is off compiles to null or an empty list,
 * so that it costs nothing on the request path.
 */
import { routeName, type Config, type RateLimitConfig, type RouteConfig } from '../config/schema.ts';
import { ProtectionState } from '../core/protection-state.ts';
import type { Registry } from '../core/registry.ts';
import type { RequestPolicy } from '../listeners/request-checks.ts';
import { AccessRules } from './ip-filter/access-rules.ts';
import { IpFilter } from './ip-filter/ip-filter.ts';
import { IpSet } from './ip-filter/ip-set.ts';
import type { Middleware } from './pipeline.ts';
import type { BanPolicy } from './rate-limit/bans.ts';
import { RateLimit, policyHeader, type CompiledLimit, type KeyPart } from './rate-limit/rate-limit.ts';

/** The registry key of the process's protection state (one for all snapshots). */
const STATE_KEY = 'protection';

/** The protection part of a snapshot. */
export interface ProtectionPolicy {
  /** Outlives the snapshot (rate-limit buckets, bans, counters). */
  readonly state: ProtectionState;
  /** Global access rules; null when none. */
  readonly access: AccessRules | null;
  /** Refused clients: closed at accept (true), or answered 403 (false). */
  readonly closeOnDeny: boolean;
  /** Most open connections per client; 0 for no limit. */
  readonly maxConnectionsPerClient: number;
  /** trusted_proxies as a set: who may send a PROXY header or name the client in X-Forwarded-For. */
  readonly trusted: IpSet | null;
  readonly bans: BanPolicy | null;
  readonly v6Prefix: number;
  /** The connection guard has something to decide at accept (besides a listener's own settings). */
  readonly atAccept: boolean;
  /**
   * Dispatch screens each request (global rules for clients behind a trusted proxy, automatic bans).
   * Bans made by hand are enforced whatever this says: callers also check `state.bans.any`.
   */
  readonly screen: boolean;
  /** Trusted proxies are configured, so X-Forwarded-For names the client (rules, limits and bans by hand use it). */
  readonly resolveClient: boolean;
  readonly request: RequestPolicy;
  /** limits.body_min_rate (bytes/s; 0: off) and its grace period (ms). */
  readonly bodyMinRate: number;
  readonly bodyGrace: number;
  /** List files held, released when the snapshot is retired. */
  readonly files: readonly string[];
}

export function compileProtection(config: Config, registry: Registry): ProtectionPolicy {
  const state = registry.acquireShared(STATE_KEY, () => new ProtectionState(config.protection.max_clients, registry.sharedProtection, registry.redis));
  const files: string[] = [];
  try {
    return buildPolicy(config, registry, state, files);
  } catch (error: unknown) {
    for (const file of files) state.releaseFile(file);
    registry.releaseShared(STATE_KEY);
    throw error;
  }
}

function buildPolicy(config: Config, registry: Registry, state: ProtectionState, files: string[]): ProtectionPolicy {
  const p = config.protection;
  state.setMaxEntries(p.max_clients);
  state.log = (level, fields, message) => registry.logger?.[level](fields, message);
  state.accessGeneration++;
  const access = AccessRules.isEmpty(p.access) ? null : new AccessRules(p.access, state, 'protection.access');
  if (access !== null) files.push(...access.files);
  const trusted = config.trusted_proxies.length > 0 ? IpSet.from(config.trusted_proxies, (i) => `trusted_proxies[${i}]`) : null;
  const bans: BanPolicy | null = p.bans.enabled
    ? {
        threshold: p.bans.threshold,
        window: p.bans.window,
        duration: p.bans.duration,
        factor: p.bans.factor,
        maxDuration: p.bans.max_duration,
        forgetAfter: p.bans.forget_after,
      }
    : null;
  const screen = bans !== null || access !== null;
  return Object.freeze({
    state,
    access,
    closeOnDeny: p.access.on_deny === 'close',
    maxConnectionsPerClient: p.max_connections_per_client,
    trusted,
    bans,
    v6Prefix: p.ipv6_prefix,
    atAccept: access !== null || bans !== null || p.max_connections_per_client > 0,
    screen,
    resolveClient: trusted !== null,
    request: Object.freeze({
      paths: Object.freeze({
        mergeSlashes: p.paths.merge_slashes,
        encodedSlashes: p.paths.encoded_slashes,
        backslashes: p.paths.backslashes,
      }),
      maxHeaderCount: config.limits.max_header_count,
      maxUrlLength: config.limits.max_url_length,
    }),
    bodyMinRate: config.limits.body_min_rate,
    bodyGrace: config.limits.body_min_rate_grace,
    files,
  });
}

/**
 * Each route's protection middlewares (by route index); on failure (a list file that cannot be
 * read) everything the policy holds is given back before the error goes on.
 */
export function compileRoutesProtection(config: Config, policy: ProtectionPolicy, registry: Registry): Middleware[][] {
  try {
    return config.routes.map((route, i) => compileRouteProtection(route, routeName(route, i), policy));
  } catch (error: unknown) {
    releaseProtection(policy, registry);
    throw error;
  }
}

/** A route's middlewares from `access` and `rate_limits`, in that order; files they hold are added to the policy's. */
function compileRouteProtection(route: RouteConfig, routeName: string, policy: ProtectionPolicy): Middleware[] {
  const middlewares: Middleware[] = [];
  const accessConfig = routeAccess(route);
  if (accessConfig !== null) {
    const rules = new AccessRules(accessConfig, policy.state, `routes.${routeName}.access`);
    (policy.files as string[]).push(...rules.files);
    middlewares.push(new IpFilter(rules, policy.state.counters));
  }
  const limits = route.rate_limits ?? [];
  if (limits.length > 0) {
    middlewares.push(
      new RateLimit(
        limits.map((limit, i) => compileLimit(limit, i, routeName)),
        { state: policy.state, bans: policy.bans, v6Prefix: policy.v6Prefix },
      ),
    );
  }
  return middlewares;
}

/** Gives back what the policy holds in the registry. */
export function releaseProtection(policy: ProtectionPolicy, registry: Registry): void {
  for (const file of policy.files) policy.state.releaseFile(file);
  registry.releaseShared(STATE_KEY);
}

function routeAccess(route: RouteConfig): NonNullable<RouteConfig['access']> | null {
  return route.access === undefined || AccessRules.isEmpty(route.access) ? null : route.access;
}

function compileLimit(limit: RateLimitConfig, index: number, routeName: string): CompiledLimit {
  const name = limit.name ?? `limit-${index}`;
  const rule = Object.freeze({ interval: limit.rate, burst: limit.burst });
  const key: KeyPart[] = limit.key.map((part) => {
    if (part === 'ip' || part === 'route') return { kind: part };
    return { kind: 'header', name: part.slice('header:'.length).toLowerCase() };
  });
  return Object.freeze({
    name,
    id: `${routeName}/${name}`,
    rule,
    key,
    delayAfterMs: limit.delay_after === undefined ? -1 : limit.delay_after * limit.rate,
    responseHeaders: limit.response_headers,
    policyHeader: policyHeader(name, rule),
  });
}
