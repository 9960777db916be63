import type { Traffic } from '../core/metrics/traffic.ts';
import type { Middleware } from '../middleware/pipeline.ts';
import type { Action } from './actions.ts';
import type { Predicate } from './matchers.ts';
import type { RequestInfo } from './request-info.ts';

/** A compiled route: its conditions and what to do. */
export interface Route {
  readonly name: string;
  readonly matches: Predicate;
  /** Run in order before the action; empty for most routes. */
  readonly middlewares: readonly Middleware[];
  readonly action: Action;
  /** Requests through the route, for /metrics; kept across reloads by the route's name. */
  readonly traffic: Traffic;
}

/** Routes are tried in the order of the configuration; the first match wins. */
export class Router {
  readonly #routes: readonly Route[];

  constructor(routes: readonly Route[]) {
    this.#routes = routes;
  }

  find(info: RequestInfo): Route | undefined {
    for (const route of this.#routes) if (route.matches(info)) return route;
    return undefined;
  }

  /** The routes in order (for the admin API's explain and /metrics). */
  get routes(): readonly Route[] {
    return this.#routes;
  }

  get size(): number {
    return this.#routes.length;
  }
}
