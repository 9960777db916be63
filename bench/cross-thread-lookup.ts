// What a cache look-up in another worker thread would cost: a MessagePort round trip that asks
// for a 100 B entry and gets its body back, one at a time. docs/operations.md (multi-core, cache)
// compares it with a whole local cache hit (~16 µs of CPU in `npm run bench`'s cache-hit run).
// Usage: node bench/cross-thread-lookup.ts [COUNT]
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

const KEY = 'GET example.com/cache/small';

if (isMainThread) {
  const count = Number(process.argv[2] ?? 20_000);
  const worker = new Worker(new URL(import.meta.url));
  await new Promise((resolve) => worker.once('message', resolve));
  let answered = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    worker.on('message', () => {
      if (++answered === count) resolve();
      else worker.postMessage(KEY);
    });
    worker.postMessage(KEY);
  });
  const micros = ((performance.now() - started) * 1000) / count;
  console.log(`${count} look-ups in another thread: ${micros.toFixed(1)} µs each (round trip, 100 B body copied back)`);
  await worker.terminate();
} else {
  const port = parentPort;
  if (port === null) throw new Error('no parent port');
  const store = new Map([[KEY, Buffer.alloc(100, 'y')]]);
  port.on('message', (key: string) => port.postMessage(store.get(key)));
  port.postMessage('ready');
}
