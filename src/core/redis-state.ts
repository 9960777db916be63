/**
 * The connection to the Redis (or Valkey) that several Gatehouse instances share (`state.redis`,
 * docs/scaling.md): one command connection and one subscriber per instance, standalone, Sentinel
 * or Cluster. Redis trouble is never a client's error: every call is bounded by `timeout`, a
 * command is never queued while disconnected (it fails at once), and the first failure marks the
 * state degraded. While degraded, the stores built on it answer locally without calling Redis; a
 * probe pings now and then and, once Redis answers again, the state recovers by itself (each
 * transition is logged once, not per request).
 */
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisConfig } from '../config/state-schema.ts';
import { parseHostPort } from '../config/units.ts';
import { asError, errorMessage } from './caught.ts';

/** ioredis, loaded by loadRedisClient: only a configuration with state.redis pays for loading it. */
let ioredis: { readonly Redis: typeof Redis; readonly Cluster: typeof Cluster } | null = null;

/**
 * Loads the Redis client library; call it before making a RedisState. Heavy optional libraries are
 * not loaded at start: a larger heap makes each of V8's full collections dearer (docs/operations.md#memory).
 */
export async function loadRedisClient(): Promise<void> {
  if (ioredis !== null) return;
  const { Redis: RedisClass, Cluster: ClusterClass } = await import('ioredis');
  ioredis = { Redis: RedisClass, Cluster: ClusterClass };
}

/** A command connection (standalone and Sentinel are a Redis; a Cluster routes by key). */
export type RedisClient = Redis | Cluster;

/** How often a degraded state pings Redis to find out whether it is back. */
const PROBE_INTERVAL_MS = 250;

/** Counters shown in `GET /status` under `redis`. */
export interface RedisCounters {
  /** Calls that failed or ran past the timeout. */
  failures: number;
  /** Times the state went degraded. */
  degradations: number;
  /** Messages published to, and received from, other instances. */
  published: number;
  received: number;
}

type Handler = (payload: unknown) => void;

/** One instance's connections to the shared Redis, its degraded/available state, and its pub/sub channels. */
export class RedisState {
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  /** Start of every key and channel. */
  readonly prefix: string;
  readonly config: RedisConfig;
  /**
   * Names this instance in its messages, so that it ignores its own. The worker threads of one
   * process share one name: they tell each other through their own channel.
   */
  readonly instance: string;
  readonly counters: RedisCounters = { failures: 0, degradations: 0, published: 0, received: 0 };
  readonly #logger: Logger | null;
  readonly #handlers = new Map<string, Handler>();
  /** Called when the state recovers (and once connected): stores resynchronise. */
  readonly #onRecover: (() => void)[] = [];
  /** Waiting for the next recovery (whenAvailable), each told once. */
  #waiters: (() => void)[] = [];
  #degraded = true;
  #since = Date.now();
  #probe: NodeJS.Timeout | null = null;
  #closed = false;
  #lastError = '';

  constructor(config: RedisConfig, logger: Logger | null, instance: string = randomUUID()) {
    this.config = config;
    this.instance = instance;
    this.prefix = config.key_prefix;
    this.#logger = logger;
    this.client = createClient(config);
    this.subscriber = createClient(config);
    for (const client of [this.client, this.subscriber]) {
      client.on('error', (error: Error) => this.#failed(error));
      client.on('close', () => this.#failed(new Error('connection closed')));
    }
    this.client.on('ready', () => this.#check());
    this.subscriber.on('ready', () => {
      this.#resubscribe();
      this.#check();
    });
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#message(channel.toString(), message));
    this.#startProbe();
  }

  /** True while Redis answers: callers may use it; false: answer locally. */
  get available(): boolean {
    return !this.#degraded;
  }

  /** Resolves true once Redis is available, or false after `timeoutMs` (the state goes on trying). */
  async whenAvailable(timeoutMs: number): Promise<boolean> {
    if (!this.#degraded) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Runs `fn` when Redis is back (and once at the first connection); the result stops it. */
  onRecover(fn: () => void): () => void {
    this.#onRecover.push(fn);
    return () => {
      const at = this.#onRecover.indexOf(fn);
      if (at !== -1) this.#onRecover.splice(at, 1);
    };
  }

  /**
   * Records a failed call: a timeout or a lost connection degrades the state until a probe
   * succeeds; an error reply (Redis answered, but refused the command) is counted and kept as the
   * last error only, for Redis is there. Bound once: fire-and-forget calls pass it to `.catch`
   * as it is (no closure per call).
   */
  readonly failed = (error: unknown): void => {
    this.counters.failures++;
    const failure = asError(error);
    if (failure.name === 'ReplyError') {
      this.#lastError = failure.message;
      return;
    }
    this.#failed(failure);
  };

  /** Listens on `channel` (prefixed); messages this instance sent are not delivered back. */
  subscribe(channel: string, handler: Handler): void {
    const full = this.prefix + channel;
    this.#handlers.set(full, handler);
    // Not connected yet: the subscriber's 'ready' subscribes to every channel (after each reconnection too).
    if (isReady(this.subscriber)) this.subscriber.subscribe(full).catch(this.failed);
  }

  /** Stops listening on `channel`. */
  unsubscribe(channel: string): void {
    const full = this.prefix + channel;
    if (!this.#handlers.delete(full)) return;
    if (isReady(this.subscriber)) this.subscriber.unsubscribe(full).catch(this.failed);
  }

  #resubscribe(): void {
    const channels = [...this.#handlers.keys()];
    if (channels.length > 0) this.subscriber.subscribe(...channels).catch(this.failed);
  }

  /** Sends `payload` to every other instance listening on `channel`; false when Redis is unavailable. */
  publish(channel: string, payload: unknown): boolean {
    if (this.#degraded) return false;
    this.counters.published++;
    this.client.publish(this.prefix + channel, JSON.stringify({ from: this.instance, payload })).catch(this.failed);
    return true;
  }

  #message(channel: string, raw: Buffer): void {
    const handler = this.#handlers.get(channel);
    if (handler === undefined) return;
    let message: { from?: unknown; payload?: unknown };
    try {
      message = JSON.parse(raw.toString()) as { from?: unknown; payload?: unknown };
    } catch {
      // Not ours (another program on the same channel): ignored.
      return;
    }
    if (message.from === this.instance) return;
    this.counters.received++;
    handler(message.payload);
  }

  #failed(error: Error): void {
    if (this.#closed) return;
    this.#lastError = error.message;
    if (!this.#degraded) {
      this.#degraded = true;
      this.#since = Date.now();
      this.counters.degradations++;
      this.#logger?.warn({ err: error.message }, 'redis unavailable: shared state degraded to local state');
    }
    this.#startProbe();
  }

  #startProbe(): void {
    if (this.#probe !== null || this.#closed) return;
    this.#probe = setInterval(() => this.#check(), PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  /** Pings; both connections ready and an answer in time end the degraded state. */
  #check(): void {
    if (!this.#degraded || this.#closed) return;
    if (!isReady(this.client) || !isReady(this.subscriber)) return;
    this.client.ping().then(
      () => this.#recovered(),
      (error: unknown) => {
        this.counters.failures++;
        this.#lastError = errorMessage(error);
      },
    );
  }

  #recovered(): void {
    if (!this.#degraded || this.#closed || !isReady(this.subscriber)) return;
    this.#degraded = false;
    if (this.#probe !== null) clearInterval(this.#probe);
    this.#probe = null;
    const first = this.counters.degradations === 0;
    this.#since = Date.now();
    this.#logger?.info({}, first ? 'redis connected: state shared' : 'redis available again: state shared');
    for (const fn of this.#onRecover) fn();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const fn of waiters) fn();
  }

  /** For `GET /status`. */
  status(): Record<string, unknown> {
    return {
      mode: this.config.cluster !== undefined ? 'cluster' : this.config.sentinels !== undefined ? 'sentinel' : 'standalone',
      connected: isReady(this.client),
      degraded: this.#degraded,
      since: new Date(this.#since).toISOString(),
      last_error: this.#lastError,
      ...this.counters,
    };
  }

  close(): void {
    this.#closed = true;
    if (this.#probe !== null) clearInterval(this.#probe);
    // QUIT after what is queued (reservations given back); cut if Redis does not answer.
    this.client.quit().catch(() => this.client.disconnect());
    this.subscriber.disconnect();
  }
}

function isReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** Reconnects forever, a little slower each time, never slower than every second. */
const retryStrategy = (times: number): number => Math.min(50 * times, 1000);

function createClient(config: RedisConfig): RedisClient {
  if (ioredis === null) throw new Error('the Redis client is not loaded (loadRedisClient first)');
  const { Cluster: ClusterClass, Redis: RedisClass } = ioredis;
  const common = {
    commandTimeout: config.timeout,
    connectTimeout: config.connect_timeout,
    // A call while disconnected fails at once instead of waiting in a queue.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy,
    // The state subscribes again itself on 'ready' (with the offline queue off, ioredis's own would fail).
    autoResubscribe: false,
    // After a Sentinel failover the old primary answers READONLY: connect again (to the new one).
    reconnectOnError: (error: Error): boolean => error.message.startsWith('READONLY'),
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(config.tls ? { tls: {} } : {}),
  };
  if (config.cluster !== undefined) {
    return new ClusterClass(config.cluster.map(hostPort), {
      redisOptions: common,
      enableOfflineQueue: false,
      clusterRetryStrategy: retryStrategy,
    });
  }
  if (config.sentinels !== undefined) {
    return new RedisClass({
      ...common,
      sentinels: config.sentinels.map(hostPort),
      name: config.name as string,
      ...(config.sentinel_password === undefined ? {} : { sentinelPassword: config.sentinel_password }),
    });
  }
  return new RedisClass(config.url as string, common);
}

function hostPort(value: string): { host: string; port: number } {
  const parsed = parseHostPort(value);
  // The schema checked the form.
  if (parsed === undefined) throw new Error(`not host:port: ${value}`);
  return parsed;
}
