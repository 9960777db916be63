/**
 * The primary of a proxy with several worker threads (`workers: N`). It owns what is done once:
 * the configuration (read, validated, handed to every worker), signals (through the CLI), the
 * admin listener, and the workers' lives. Workers own the request path (workers/worker.ts).
 *
 * - Listeners: each worker binds every address with SO_REUSEPORT and the kernel spreads the
 *   connections. The primary binds each address first (which finds a port in use, or picks the
 *   port for `:0`, before any worker starts), and lets go once the workers hold it.
 * - Reload: every worker prepares the new configuration beside the running one; only when all
 *   have, all commit. One that cannot makes the others abort: every worker changes, or none.
 * - A worker that dies is replaced with the running configuration, the reason logged; the others
 *   go on serving. Deaths in quick succession wait longer and longer before the next try.
 * - Status, cache statistics and purges, drains: asked of every worker, answered for the proxy.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { startAdminListener, type AdminListener, type AdminTarget } from '../admin/admin.ts';
import type { CacheAdmin } from '../admin/cache.ts';
import type { Explanation, ExplainQuery } from '../admin/explain.ts';
import { mergeWindows } from '../admin/live.ts';
import type { ProtectionAdmin } from '../admin/protection.ts';
import { mergeMetrics, MetricsEndpoint, type MetricsAnswer, type MetricsJson } from '../admin/metrics/endpoint.ts';
import { ReloadCounts, reloadFamilies } from '../admin/metrics/families.ts';
import type { PurgeSelector } from '../cache/compile.ts';
import { loadConfigFile, sourceOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { formatAddress, parseHostPort } from '../config/units.ts';
import { ProtectionState } from '../core/protection-state.ts';
import type { TrafficWindow } from '../core/recent-traffic.ts';
import { loadRedisClient, RedisState } from '../core/redis-state.ts';
import { SharedConnectionCounts } from '../middleware/rate-limit/shared-store.ts';
import { listenError } from '../listeners/bind-error.ts';
import type { Request, RequestBody, WorkerData, WorkerMessage } from './messages.ts';
import { usableCpus } from './cpus.ts';
import { allocateSharedMemory, sharedProtection, type SharedMemory } from './shared.ts';
import { mergeStatuses } from './status.ts';
import { asError, errorMessage } from '../core/caught.ts';

export interface PrimaryOptions {
  readonly configFile?: string;
  readonly logger: Logger;
  /** How many worker threads. */
  readonly workers: number;
}

/** The worker module beside this one: .ts from the sources, .js once built. */
const WORKER_SCRIPT = new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
/** A worker that has not answered a request by then is taken for stuck. */
const ASK_TIMEOUT_MS = 30_000;
/** A worker that has not said it started by then is taken for dead. */
const START_TIMEOUT_MS = 30_000;
/** Deaths counted for the back-off: those in the last minute. */
const CRASH_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** One worker thread and what is waiting on it. */
class WorkerHandle {
  readonly index: number;
  readonly thread: Worker;
  readonly pending = new Map<number, Pending>();
  /** The configuration it runs. */
  config: Config;
  ready = false;
  /** The thread ended: nothing sent to it is answered any more. */
  exited = false;
  /** Why it died, when it threw. */
  error: Error | null = null;

  constructor(index: number, config: Config, memory: SharedMemory, logLevel: string, runsChecks: boolean) {
    this.index = index;
    this.config = config;
    const data: WorkerData = { index, config, memory, logLevel, runsChecks };
    this.thread = new Worker(WORKER_SCRIPT, { workerData: data });
  }

  failAll(reason: string): void {
    for (const pending of this.pending.values()) pending.reject(new Error(reason));
    this.pending.clear();
  }
}

export class Primary implements AdminTarget {
  readonly #logger: Logger;
  readonly #configFile: string | undefined;
  readonly #count: number;
  readonly #memory: SharedMemory;
  /** The admin API's view of bans and limits: the same shared state the workers use. */
  readonly #protection: ProtectionState;
  readonly #shared: ReturnType<typeof sharedProtection>;
  /** `state.redis` (read at start), for the admin API's bans; each worker has its own connections. */
  readonly #redis: RedisState | null;
  readonly #workers: (WorkerHandle | null)[];
  /** Deaths per worker slot (epoch ms), for the back-off. */
  readonly #deaths: number[][];
  /** Servers drained through the admin API (by upstream and URL): each worker keeps its own flag, and a replacement starts without it. */
  readonly #drains = new Map<string, { readonly upstream: string; readonly server: string }>();
  /** The port picked for each `:0` listener, by position, so that a reload keeps it. */
  readonly #pickedPorts = new Map<number, number>();
  readonly #startedAt = Date.now();
  #config: Config;
  /** The worker that runs the active health checks for all; null while none does. */
  #checker: WorkerHandle | null = null;
  #nextId = 0;
  #restarts = 0;
  #stopping: Promise<void> | undefined;
  #reloads: Promise<void> = Promise.resolve();
  #admin: AdminListener | undefined;
  #adminAddress: AddressInfo | undefined;
  readonly #reloadCounts = new ReloadCounts();
  /** The primary's own metrics (reloads, the process's); the request path's come from the workers. */
  readonly #metrics = new MetricsEndpoint(() => reloadFamilies(this.#reloadCounts), true);

  private constructor(config: Config, options: PrimaryOptions) {
    this.#logger = options.logger;
    this.#configFile = options.configFile;
    this.#count = options.workers;
    this.#config = config;
    this.#memory = allocateSharedMemory(config.protection.max_clients, options.workers);
    this.#shared = sharedProtection(this.#memory);
    // The admin API's bans reach other instances through Redis too (the workers share the primary's name there).
    const redis = config.state.redis;
    this.#redis = redis === undefined ? null : new RedisState(redis, options.logger, this.#memory.channel);
    this.#protection = new ProtectionState(config.protection.max_clients, this.#shared, this.#redis);
    this.#workers = Array.from({ length: options.workers }, () => null);
    this.#deaths = Array.from({ length: options.workers }, () => []);
  }

  /** Binds the listeners, starts the workers and the admin listener; throws (having undone it all) when any fails. */
  static async start(config: Config, options: PrimaryOptions): Promise<Primary> {
    if (config.state.redis !== undefined) await loadRedisClient();
    const primary = new Primary(config, options);
    const { resolved, probes } = await primary.#claimAddresses(config, config);
    try {
      primary.#config = resolved;
      await Promise.all(primary.#workers.map((_, index) => primary.#spawn(index)));
      if (config.admin !== undefined) ({ admin: primary.#admin, address: primary.#adminAddress } = await startAdminListener(config, primary, options.logger));
    } catch (error: unknown) {
      await primary.#shutdown(0);
      throw error;
    } finally {
      await closeAll(probes);
    }
    options.logger.info({ listeners: primary.addresses.map(formatAddress), workers: options.workers }, 'gatehouse started');
    return primary;
  }

  /** The configuration running now (listen addresses with the ports picked for `:0`). */
  get config(): Config {
    return this.#config;
  }

  /** The bound addresses, in configuration order. */
  get addresses(): AddressInfo[] {
    return this.#config.listen.map((listen) => {
      const hostPort = parseHostPort(listen.address) as { host: string; port: number };
      return { address: hostPort.host, port: hostPort.port, family: hostPort.host.includes(':') ? 'IPv6' : 'IPv4' };
    });
  }

  get adminAddress(): AddressInfo | undefined {
    return this.#adminAddress;
  }

  /** The file the configuration came from; undefined when built in code (`proxy`, tests). */
  get configFile(): string | undefined {
    return this.#configFile;
  }

  /** Worker threads serving now. */
  get liveWorkers(): number {
    return this.#serving().length;
  }

  /** The workers serving now (started and not exited), in slot order. */
  #serving(): WorkerHandle[] {
    return this.#workers.filter((w): w is WorkerHandle => w?.ready === true);
  }

  /** Reads the file again (or takes `next`) and moves every worker to it, or none. Reloads run one after another. */
  reload(next?: Config): Promise<void> {
    return this.#serially(() => this.#reloadCounts.count(this.#reload(next)));
  }

  /** Runs `task` after the reloads and catch-ups before it: a worker never prepares two configurations at once. */
  #serially(task: () => Promise<void>): Promise<void> {
    const run = this.#reloads.then(task);
    this.#reloads = run.catch(() => {});
    return run;
  }

  async #reload(next?: Config): Promise<void> {
    if (this.#stopping !== undefined) throw new Error('gatehouse is stopping');
    const loaded = next ?? (await this.#readConfigFile());
    if (loaded.workers !== this.#config.workers) {
      this.#logger.warn({ running: this.#count, configured: loaded.workers }, 'workers takes effect at the next start, not on reload');
    }
    // The setting the workers started with stays (it changes at the next start): the workers compare like with like.
    const config = { ...loaded, workers: this.#config.workers };
    // Addresses the workers serve now need no probe (one would take a share of their connections).
    const held = new Set(this.#config.listen.map((listen) => listen.address));
    const { resolved, probes } = await this.#claimAddresses(config, loaded, held);
    try {
      const live = this.#serving();
      const reload = ++this.#nextId;
      const outcomes = await Promise.allSettled(live.map((w) => this.#ask(w, { type: 'prepare', reload, config: resolved })));
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed !== undefined) {
        const prepared = live.filter((_, i) => outcomes[i]?.status === 'fulfilled');
        await Promise.allSettled(prepared.map((w) => this.#ask(w, { type: 'abort', reload })));
        throw asError(failed.reason);
      }
      const commits = await Promise.allSettled(live.map(async (w) => {
        await this.#ask(w, { type: 'commit', reload });
        w.config = resolved;
      }));
      // Committed, even if a worker died meanwhile: its replacement starts with this configuration.
      this.#config = resolved;
      // The configuration as read (its text, without the picked ports) for the admin API's history.
      this.#admin?.committed(loaded);
      const lost = live.filter((_, i) => commits[i]?.status === 'rejected').map((w) => w.index);
      if (lost.length > 0) this.#logger.error({ workers: lost }, 'workers lost during the commit of a reload');
      this.#logger.info({ workers: live.length - lost.length }, 'configuration reloaded in every worker');
    } finally {
      await closeAll(probes);
    }
  }

  /** Drains every worker for up to `graceMs`, then stops them. Safe to call more than once. */
  stop(graceMs = this.#config.shutdown_timeout): Promise<void> {
    this.#stopping ??= this.#shutdown(graceMs).then(() => this.#logger.info('gatehouse stopped'));
    return this.#stopping;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#stopping ??= Promise.resolve();
    const workers = this.#workers.filter((w): w is WorkerHandle => w !== null && !w.exited);
    await Promise.all(workers.map(async (w) => {
      const exited = once(w.thread, 'exit');
      if (w.ready) await this.#ask(w, { type: 'stop', graceMs }).catch(() => {});
      // Drained (or never started): the thread ends; one that hangs is ended.
      const timer = setTimeout(() => void w.thread.terminate(), w.ready ? 2000 : 0);
      await exited;
      clearTimeout(timer);
    }));
    await this.#admin?.close();
    this.#protection.close();
    this.#shared.close();
    this.#redis?.close();
  }

  /** Ends a worker thread at once, as a crash would (for tests and for a worker that misbehaves); it is replaced. */
  async terminateWorker(index: number): Promise<void> {
    await this.#workers[index]?.thread.terminate();
  }

  // The admin API, for the whole proxy.

  async status(): Promise<unknown> {
    const asked = this.#serving();
    // A worker that dies meanwhile is left out (its replacement shows next time), not a failed status.
    const outcomes = await Promise.allSettled(asked.map((w) => this.#ask(w, { type: 'status' })));
    const live = asked.filter((_, i) => outcomes[i]?.status === 'fulfilled');
    const statuses = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const merged = mergeStatuses(statuses) as Record<string, unknown>;
    return {
      ...merged,
      uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      config_file: this.#configFile ?? null,
      listeners: this.addresses.map(formatAddress),
      workers: {
        configured: this.#count,
        live: live.length,
        restarts: this.#restarts,
        // How the kernel spreads the load: requests forwarded and in flight, per worker.
        each: live.map((w, i) => ({ index: w.index, ...upstreamLoad(statuses[i]) })),
      },
    };
  }

  async drain(upstream: string, server: string, on: boolean): Promise<unknown> {
    const first = await this.#askAll({ type: 'drain', upstream, server, on }).then(([answer]) => answer);
    const url = (first as { url?: unknown } | undefined)?.url;
    if (typeof url === 'string') {
      if (on) this.#drains.set(`${upstream} ${url}`, { upstream, server: url });
      else this.#drains.delete(`${upstream} ${url}`);
    }
    return first;
  }

  /** Every worker's last minute of traffic, as one. */
  async traffic(): Promise<TrafficWindow> {
    return mergeWindows((await this.#askAll({ type: 'traffic' })) as TrafficWindow[]);
  }

  /** One worker's view (each has its own balancer rotation; the configuration is the same). */
  async explain(query: ExplainQuery): Promise<Explanation> {
    const [worker] = this.#serving();
    if (worker === undefined) throw new Error('no worker is serving');
    return (await this.#ask(worker, { type: 'explain', query })) as Explanation;
  }

  /** One /metrics for the proxy: every serving worker's, merged with the primary's. */
  async metrics(): Promise<MetricsAnswer | null> {
    if (this.#config.admin?.metrics !== true) return null;
    const workers = (await this.#askAll({ type: 'metrics' })) as MetricsJson[];
    return mergeMetrics(await this.#metrics.json(), workers);
  }

  protection(): ProtectionAdmin {
    return { state: this.#protection, v6Prefix: this.#config.protection.ipv6_prefix };
  }

  caches(): CacheAdmin {
    return {
      stats: async () => mergeStatuses(await this.#askAll({ type: 'cache_stats' })),
      // Each worker keeps its own cache: a purge goes to all of them, and counts what all of them dropped.
      purge: async (selector: PurgeSelector) => {
        const counts = await this.#askAll({ type: 'purge', selector });
        return counts.reduce((sum: number, n) => sum + (n as number), 0);
      },
    };
  }

  /**
   * Asks every serving worker; the answers of those that answered (a worker that dies meanwhile is
   * left out). Rejects with the first error when none answered: "no such server" is every worker's.
   */
  async #askAll(body: RequestBody): Promise<unknown[]> {
    const live = this.#serving();
    const outcomes = await Promise.allSettled(live.map((w) => this.#ask(w, body)));
    const answers = outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (answers.length === 0 && failed !== undefined) throw asError(failed.reason);
    return answers;
  }

  // Workers' lives.

  /** Starts the worker for slot `index` and waits until it serves; rejects when it cannot start. */
  async #spawn(index: number): Promise<void> {
    // The active health checks run in one worker: this one, when no other runs them now.
    const runsChecks = this.#checker === null;
    const handle = new WorkerHandle(index, this.#config, this.#memory, this.#logger.level, runsChecks);
    if (runsChecks) this.#checker = handle;
    this.#workers[index] = handle;
    const started = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`worker ${index} did not start within ${START_TIMEOUT_MS / 1000} s`));
        // Ended, so that it is replaced rather than left half started.
        void handle.thread.terminate();
      }, START_TIMEOUT_MS);
      handle.thread.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          handle.ready = true;
          resolve();
        } else if (message.type === 'start_failed') {
          clearTimeout(timer);
          reject(new Error(message.error));
        } else {
          const pending = handle.pending.get(message.id);
          handle.pending.delete(message.id);
          if (message.ok) pending?.resolve(message.value);
          else pending?.reject(new Error(message.error));
        }
      });
      handle.thread.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(handle.error?.message ?? `worker ${index} exited while starting`));
      });
    });
    handle.thread.on('error', (error: Error) => (handle.error = error));
    handle.thread.once('exit', (code: number) => this.#exited(handle, code));
    await started;
    // A reload committed while this one started, or commits before it is asked: bring it to the
    // running configuration after that reload (it was not among the workers the reload moved).
    try {
      await this.#serially(() => this.#catchUp(handle));
    } catch (error: unknown) {
      // Serving another configuration than the others would break "every worker or none": it goes, and is replaced.
      void handle.thread.terminate();
      throw error;
    }
    // The drains made through the admin API before it started.
    for (const [key, { upstream, server }] of this.#drains) {
      await this.#ask(handle, { type: 'drain', upstream, server, on: true }).catch(() => {
        // The server is configured no more (a reload removed it): its drain goes with it.
        if (!handle.exited) this.#drains.delete(key);
      });
    }
  }

  async #catchUp(handle: WorkerHandle): Promise<void> {
    const config = this.#config;
    if (handle.config === config || handle.exited || this.#stopping !== undefined) return;
    const reload = ++this.#nextId;
    await this.#ask(handle, { type: 'prepare', reload, config });
    await this.#ask(handle, { type: 'commit', reload });
    handle.config = config;
  }

  #exited(handle: WorkerHandle, code: number): void {
    handle.exited = true;
    handle.failAll(`worker ${handle.index} exited`);
    const wasReady = handle.ready;
    handle.ready = false;
    if (this.#stopping !== undefined || this.#workers[handle.index] !== handle) return;
    this.#workers[handle.index] = null;
    if (this.#checker === handle) this.#moveChecks();
    // Its connections went with it, uncounted: the clients it held may connect again.
    if (wasReady) new SharedConnectionCounts(this.#memory.connections).clear();
    const now = Date.now();
    const deaths = (this.#deaths[handle.index] as number[]).filter((at) => now - at < CRASH_WINDOW_MS);
    deaths.push(now);
    this.#deaths[handle.index] = deaths;
    const delay = restartDelay(deaths.length);
    this.#logger.error(
      { worker: handle.index, exit_code: code, error: handle.error?.message ?? null, was_serving: wasReady, restart_in_ms: delay },
      'worker died; starting a new one',
    );
    const timer = setTimeout(() => {
      if (this.#stopping !== undefined) return;
      this.#restarts++;
      this.#spawn(handle.index).then(
        () => {
          // The bans made before it started live in each thread's memory: the primary, which
          // heard of them all, tells them again (the other workers already have them).
          this.#protection.bans.republish();
          this.#logger.info({ worker: handle.index }, 'worker replaced');
        },
        (error: unknown) => this.#logger.error({ worker: handle.index, error: errorMessage(error) }, 'replacement worker failed to start'),
      );
    }, delay);
    timer.unref();
  }

  /**
   * The worker that ran the health checks died: a serving worker takes them over at once (else the
   * next worker to start does), so that no server goes unchecked while it is replaced.
   */
  #moveChecks(): void {
    const next = this.#serving()[0] ?? null;
    this.#checker = next;
    if (next === null) return;
    this.#ask(next, { type: 'run_checks' }).then(
      () => this.#logger.info({ worker: next.index }, 'health checks moved to another worker'),
      () => {
        // It died too: its own exit moves them on.
      },
    );
  }

  /**
   * Sends a request to a worker and waits for its reply, at most `ASK_TIMEOUT_MS` (a stop, its
   * drain time more): a worker stuck in a loop fails the request rather than hang every reload.
   */
  #ask(handle: WorkerHandle, body: RequestBody): Promise<unknown> {
    // A message to a thread that ended is dropped without a word: it would never be answered.
    if (handle.exited) return Promise.reject(new Error(`worker ${handle.index} exited`));
    const id = ++this.#nextId;
    const request: Request = { ...body, id };
    const limit = ASK_TIMEOUT_MS + (body.type === 'stop' ? body.graceMs : 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        handle.pending.delete(id);
        reject(new Error(`worker ${handle.index} did not answer "${body.type}" within ${limit / 1000} s`));
      }, limit);
      timer.unref();
      handle.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      handle.thread.postMessage(request);
    });
  }

  /**
   * Binds each listen address once, with SO_REUSEPORT, to find an address in use (with the
   * file:line of `source`, the configuration as read) and to pick the ports of `:0` addresses,
   * before any worker binds; addresses in `held` (served by the workers now) are not bound again.
   * The returned configuration names the picked ports. The caller closes the probes.
   */
  async #claimAddresses(config: Config, source: Config, held: ReadonlySet<string> = new Set()): Promise<{ resolved: Config; probes: Server[] }> {
    const probes: Server[] = [];
    try {
      const listen = [];
      for (const [index, entry] of config.listen.entries()) {
        const hostPort = parseHostPort(entry.address);
        if (hostPort === undefined) throw new Error(`listen[${index}]: bad address ${entry.address}`);
        const port = hostPort.port === 0 ? (this.#pickedPorts.get(index) ?? 0) : hostPort.port;
        const family = hostPort.host.includes(':') ? 'IPv6' : 'IPv4';
        const address = formatAddress({ address: hostPort.host, port, family });
        if (port !== 0 && held.has(address)) {
          listen.push({ ...entry, address });
          continue;
        }
        // The probe is in the port's SO_REUSEPORT group, so the kernel gives it a share of new
        // connections while it is open: it closes them at once (a client retries) rather than
        // holding them unanswered, and its close does not wait for them.
        const probe = createServer((socket) => socket.destroy());
        probes.push(probe);
        try {
          probe.listen({ host: hostPort.host, port, reusePort: true });
          await once(probe, 'listening');
        } catch (error: unknown) {
          throw listenError(error, entry.address, `listen[${index}]`, sourceOf(source, ['listen', index, 'address']));
        }
        const bound = (probe.address() as AddressInfo).port;
        if (hostPort.port === 0) this.#pickedPorts.set(index, bound);
        listen.push({ ...entry, address: formatAddress({ address: hostPort.host, port: bound, family }) });
      }
      return { resolved: { ...config, listen }, probes };
    } catch (error: unknown) {
      await closeAll(probes);
      throw error;
    }
  }


  async #readConfigFile(): Promise<Config> {
    if (this.#configFile === undefined) throw new Error('no configuration file to reload from');
    return loadConfigFile(this.#configFile);
  }
}

/** How many workers a `workers` setting asks for: `auto` is the CPUs this process may use. */
export function workerCount(setting: Config['workers']): number {
  return setting === 'auto' ? usableCpus() : setting;
}

/** How long to wait before replacing a worker that died `recentDeaths` times in the last minute: at once, then 0.5 s, 1 s, 2 s … up to 30 s. */
export function restartDelay(recentDeaths: number): number {
  return recentDeaths <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (recentDeaths - 2));
}

/** Requests forwarded and in flight, summed over a worker's upstreams. */
function upstreamLoad(status: unknown): { requests: number; in_flight: number } {
  const upstreams = (status as { upstreams?: Record<string, { in_flight?: number; servers?: { requests?: number }[] }> }).upstreams ?? {};
  let requests = 0;
  let inFlight = 0;
  for (const upstream of Object.values(upstreams)) {
    inFlight += upstream.in_flight ?? 0;
    for (const server of upstream.servers ?? []) requests += server.requests ?? 0;
  }
  return { requests, in_flight: inFlight };
}

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
}

