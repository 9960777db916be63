/** The messages between the primary and its worker threads (structured clones over the port). */
import type { ExplainQuery } from '../admin/explain.ts';
import type { PurgeSelector } from '../cache/compile.ts';
import type { Config } from '../config/schema.ts';
import type { SharedMemory } from './shared.ts';

/** What a worker is started with. */
export interface WorkerData {
  readonly index: number;
  /** The primary's log level (the configuration's, or a caller's such as a test's `silent`). */
  readonly logLevel: string;
  /** This worker runs the active health checks for all (one does; the primary moves them on a death). */
  readonly runsChecks: boolean;
  readonly config: Config;
  readonly memory: SharedMemory;
}

/** What the primary asks of a worker. A reload's prepare, commit and abort share its `reload` number. */
export type RequestBody =
  | { readonly type: 'prepare'; readonly reload: number; readonly config: Config }
  | { readonly type: 'commit'; readonly reload: number }
  | { readonly type: 'abort'; readonly reload: number }
  | { readonly type: 'status' }
  | { readonly type: 'drain'; readonly upstream: string; readonly server: string; readonly on: boolean }
  | { readonly type: 'cache_stats' }
  | { readonly type: 'metrics' }
  | { readonly type: 'traffic' }
  | { readonly type: 'purge'; readonly selector: PurgeSelector }
  | { readonly type: 'explain'; readonly query: ExplainQuery }
  | { readonly type: 'stop'; readonly graceMs: number }
  | { readonly type: 'run_checks' };

/** A request as sent: each gets one reply with its `id`. */
export type Request = RequestBody & { readonly id: number };

/** What a worker says: it started (or could not), or the answer to a request. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'start_failed'; readonly error: string }
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string };
