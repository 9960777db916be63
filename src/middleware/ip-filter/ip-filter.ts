/** A route's access rules as a middleware: a refused client gets 403 (the connection stays usable). */
import type { Exchange } from '../../core/exchange.ts';
import { GatehouseError } from '../../core/errors.ts';
import type { ProtectionCounters } from '../../core/protection-state.ts';
import { sendError } from '../../listeners/respond.ts';
import type { Finish, Middleware, Next } from '../pipeline.ts';
import type { AccessRules } from './access-rules.ts';

export class IpFilter implements Middleware {
  readonly name = 'ip_filter';
  readonly #rules: AccessRules;
  readonly #counters: ProtectionCounters;

  constructor(rules: AccessRules, counters: ProtectionCounters) {
    this.#rules = rules;
    this.#counters = counters;
  }

  /** Whether the rules let `client` through (the admin API's explain asks; handle() reads the rules itself). */
  allows(client: string): boolean {
    return this.#rules.allows(client);
  }

  handle(ex: Exchange, next: Next, finish: Finish): void {
    if (this.#rules.allows(ex.client)) {
      next();
      return;
    }
    this.#counters.denied_requests++;
    sendError(ex, new GatehouseError('FORBIDDEN'));
    finish(ex);
  }
}
