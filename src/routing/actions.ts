/** What a route does once it matched: forward to an upstream, redirect, or answer itself. */
import type { RouteConfig } from '../config/schema.ts';
import type { Exchange } from '../core/exchange.ts';
import type { GslbAction } from '../gslb/action.ts';
import type { HeaderOps } from '../middleware/headers.ts';
import type { Upstream } from '../upstream/upstream.ts';

export interface ForwardAction {
  readonly kind: 'forward';
  readonly upstream: Upstream;
  /** Turns the client's path (with query) into the path sent upstream; null keeps it. */
  readonly rewritePath: ((pathAndQuery: string, path: string) => string) | null;
  readonly requestHeaders: HeaderOps | null;
  readonly responseHeaders: HeaderOps | null;
  /**
   * GSLB spill-over: when this upstream has no server left for a request, the next region's
   * action (the slot moves there), or null; null for a plain route.
   */
  readonly spill: ((ex: Exchange) => ForwardAction | null) | null;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly status: number;
  readonly to: string;
  readonly keepQuery: boolean;
  readonly responseHeaders: HeaderOps | null;
}

export interface RespondAction {
  readonly kind: 'respond';
  readonly status: number;
  readonly body: Buffer;
  readonly contentType: string;
  readonly responseHeaders: HeaderOps | null;
}

export type Action = ForwardAction | GslbAction | RedirectAction | RespondAction;

/** Compiles strip_prefix and rewrite into one function; null when the path passes unchanged. */
export function compilePathRewrite(route: RouteConfig): ForwardAction['rewritePath'] {
  const strip = route.strip_prefix?.replace(/\/$/, '');
  const rewrite = route.rewrite ? { re: new RegExp(route.rewrite.pattern), replace: route.rewrite.replace } : null;
  if (!strip && rewrite === null) return null;
  const stripDir = `${strip}/`;
  return (pathAndQuery, path) => {
    const query = pathAndQuery.slice(path.length);
    let next = path;
    if (strip && (next === strip || next.startsWith(stripDir))) next = next.slice(strip.length) || '/';
    if (rewrite !== null) next = next.replace(rewrite.re, rewrite.replace);
    if (!next.startsWith('/')) next = `/${next}`;
    return next + query;
  };
}
