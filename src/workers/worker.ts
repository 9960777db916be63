/**
 * A worker thread: one Gatehouse that serves requests on listeners bound with SO_REUSEPORT (the
 * kernel spreads connections over the workers), with the protection state shared through
 * workers/shared.ts. It does what the primary asks (messages.ts) and nothing on its own: no
 * signals, no admin listener (Gatehouse binds none in a worker; `admin.metrics` still says
 * whether to count), no reads of the configuration file.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/logger.ts';
import { Gatehouse, type PreparedReload } from '../gatehouse.ts';
import type { Request, WorkerData, WorkerMessage } from './messages.ts';
import { sharedAcme, sharedHealth, sharedProtection } from './shared.ts';
import { errorMessage } from '../core/caught.ts';

const port = parentPort;
if (port === null) throw new Error('workers/worker.ts runs as a worker thread');
const data = workerData as WorkerData;
const logger = createLogger(data.logLevel).child({ worker: data.index });
const shared = sharedProtection(data.memory);
// One worker checks the servers for all: the primary says which, and moves the checks when it dies.
const health = sharedHealth(data.memory, data.runsChecks);
// ... and orders the ACME certificates for all.
const acme = sharedAcme(data.memory, health);
const send = (message: WorkerMessage): void => port.postMessage(message);

let gatehouse: Gatehouse;
try {
  gatehouse = await Gatehouse.start(data.config, { logger, worker: { protection: shared, health, acme, ticketSecret: Buffer.from(data.memory.ticketSecret), answersDns: data.index === 0, redisInstance: data.memory.channel } });
} catch (error: unknown) {
  send({ type: 'start_failed', error: errorMessage(error) });
  shared.close();
  health.close();
  acme.close();
  process.exit(1);
}

const prepared = new Map<number, PreparedReload>();

async function answer(request: Request): Promise<unknown> {
  switch (request.type) {
    case 'prepare': {
      prepared.set(request.reload, await gatehouse.prepareReload(request.config));
      return null;
    }
    case 'commit':
    case 'abort': {
      const reload = prepared.get(request.reload);
      prepared.delete(request.reload);
      if (reload === undefined) throw new Error(`no prepared reload ${request.reload}`);
      if (request.type === 'commit') gatehouse.commitReload(reload);
      else await gatehouse.abortReload(reload);
      return null;
    }
    case 'status':
      return gatehouse.status();
    case 'drain':
      return gatehouse.drain(request.upstream, request.server, request.on);
    case 'metrics':
      return gatehouse.metricsJson();
    case 'cache_stats':
      return gatehouse.caches().stats();
    case 'traffic':
      return gatehouse.traffic();
    case 'purge':
      return gatehouse.caches().purge(request.selector);
    case 'explain':
      return gatehouse.explain(request.query);
    case 'run_checks':
      health.setRunsChecks(true);
      return null;
    case 'stop':
      await gatehouse.stop(request.graceMs);
      shared.close();
      health.close();
      acme.close();
      return null;
    default:
      return request satisfies never;
  }
}

port.on('message', (request: Request) => {
  answer(request).then(
    (value) => {
      send({ type: 'reply', id: request.id, ok: true, value });
      // Stopped: the listening port must not keep the thread alive (the primary would wait, then end it).
      if (request.type === 'stop') port.unref();
    },
    (error: unknown) => send({ type: 'reply', id: request.id, ok: false, error: errorMessage(error) }),
  );
});
send({ type: 'ready' });
