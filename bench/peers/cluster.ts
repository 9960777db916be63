// Runs N copies of a peer script under node:cluster, as a Node user would spread a proxy over
// cores: the primary holds the listening socket and hands each new connection to a worker in turn
// (round-robin, the default on Linux); it serves no requests itself.
// Usage: node bench/peers/cluster.ts --workers N SCRIPT [SCRIPT'S ARGUMENTS…]
//   e.g. node bench/peers/cluster.ts --workers 2 bench/peers/fastify-proxy.ts --port 8080 --target http://127.0.0.1:9000
// Prints "cluster: N workers listening" on stderr once every worker listens. A worker that dies
// takes the whole cluster down (exit 1): a benchmark must not go on with fewer workers. SIGTERM or
// SIGINT stops the workers (SIGKILL after 2 s) and then the primary.
// The workers run this file too, which runs SCRIPT in them: a cluster worker's channel to the
// primary keeps it alive after SCRIPT has closed its server on SIGTERM, so the worker lets go of
// the channel shortly after the signal and then exits by itself.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const STOP_GRACE_MS = 2000;
/** In a worker: how long after SIGTERM SCRIPT has to close its server before the channel is closed. */
const WORKER_CLOSE_MS = 300;

if (cluster.isWorker) {
  const [script, ...scriptArgs] = process.argv.slice(2);
  if (script === undefined) throw new Error('cluster.ts worker: no script');
  // `on`, not `once`: the same signal often comes twice (to the whole process group, and from the
  // primary), and a second one without a listener would kill the worker there and then.
  let closing = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (closing) return;
      closing = true;
      setTimeout(() => process.connected && process.disconnect(), WORKER_CLOSE_MS);
    });
  }
  // SCRIPT reads its arguments from process.argv as when run on its own.
  process.argv = [process.argv[0] ?? process.execPath, script, ...scriptArgs];
  await import(pathToFileURL(script).href);
} else {
  runPrimary();
}

function usage(problem: string): never {
  console.error(`cluster.ts: ${problem}\nusage: node bench/peers/cluster.ts --workers N SCRIPT [ARGS…]`);
  process.exit(2);
}

function runPrimary(): void {
  const [flag, count, script, ...scriptArgs] = process.argv.slice(2);
  if (flag !== '--workers' || count === undefined || script === undefined) usage('expected --workers N SCRIPT');
  const workers = Number(count);
  if (!Number.isInteger(workers) || workers < 1) usage(`invalid --workers ${count}`);

  // The workers run this file (the branch above), which runs SCRIPT.
  cluster.setupPrimary({ exec: import.meta.filename, args: [resolve(script), ...scriptArgs] });

  /** Set once stopping: the code the primary exits with when the last worker is gone. */
  let exitCode: number | undefined;
  let listening = 0;
  const forked: Worker[] = [];

  cluster.on('listening', (_worker, address) => {
    listening += 1;
    if (listening === workers) console.error(`cluster: ${workers} workers listening on ${address.address ?? ''}:${address.port}`);
  });

  cluster.on('exit', (worker, code, signal) => {
    if (exitCode === undefined) {
      console.error(`cluster: worker ${worker.id} exited (code ${code ?? '-'}, signal ${signal ?? '-'}); stopping the cluster`);
      stop(1);
    }
    if (forked.every((w) => w.isDead())) process.exit(exitCode);
  });

  function stop(code: number): void {
    if (exitCode !== undefined) return;
    exitCode = code;
    // SCRIPT closes its server on SIGTERM; the worker then closes its channel and exits.
    for (const worker of forked) if (!worker.isDead()) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of forked) if (!worker.isDead()) worker.process.kill('SIGKILL');
      process.exit(code);
    }, STOP_GRACE_MS).unref();
  }

  // `on`, as in the workers: a second signal must not kill the primary before its workers are stopped.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(0));

  for (let i = 0; i < workers; i++) forked.push(cluster.fork());
}
