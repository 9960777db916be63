import type { Config } from '../config/schema.ts';
import type { Router } from '../routing/router.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { ForwardingPolicy } from '../middleware/forwarded.ts';
import type { ResponseHiding } from '../upstream/rewrite.ts';
import type { ProtectionPolicy } from '../middleware/protection.ts';
import type { CacheSet } from '../cache/compile.ts';
import type { Gslb } from '../gslb/regions.ts';
import type { RequestMetrics } from './metrics/record.ts';
import type { TracingPolicy } from './tracing/policy.ts';

/** The compiled, immutable runtime made from one configuration. */
export interface Snapshot {
  readonly config: Config;
  readonly router: Router;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** The compiled `gslb` blocks, by name. */
  readonly gslb: ReadonlyMap<string, Gslb>;
  readonly forwarding: ForwardingPolicy;
  readonly hiding: ResponseHiding;
  /** Largest accepted request body in bytes; 0 for no limit. */
  readonly maxBodySize: number;
  /** Access rules, connection and rate limits, request checks (see middleware/protection.ts). */
  readonly protection: ProtectionPolicy;
  /** The routes' HTTP caches, their stores, purging (see cache/compile.ts). */
  readonly caches: CacheSet;
  /** Counts each finished request for /metrics; null when metrics are off. */
  readonly metrics: RequestMetrics | null;
  /** Trace context, request ids and span export (see core/tracing/). */
  readonly tracing: TracingPolicy;
}

/** Holds the current snapshot; a reload swaps it in one assignment. */
export class SnapshotHolder {
  #current: Snapshot;

  constructor(initial: Snapshot) {
    this.#current = initial;
  }

  get current(): Snapshot {
    return this.#current;
  }

  /** Installs `next` and returns the snapshot it replaced. */
  swap(next: Snapshot): Snapshot {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
