/** The shared-memory table behind limits across worker threads: one key, many threads, one count. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { allocateSharedTable, SharedTable, WAYS } from '../../src/core/shared-table.ts';
import { SharedConnectionCounts, SharedRateLimitStore } from '../../src/middleware/rate-limit/shared-store.ts';

const STORE = new URL('../../src/middleware/rate-limit/shared-store.ts', import.meta.url).href;

/** Runs `takes` takes of one key in each of `threads` worker threads at once; returns how many were allowed. */
async function takeInThreads(threads: number, takes: number, burst: number): Promise<number> {
  const memory = allocateSharedTable(1000);
  const start = new SharedArrayBuffer(4);
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.store).then(({ SharedRateLimitStore }) => {
      const store = new SharedRateLimitStore(workerData.memory);
      const gate = new Int32Array(workerData.start);
      Atomics.wait(gate, 0, 0);
      let allowed = 0;
      for (let i = 0; i < workerData.takes; i++) if (store.take('client', { interval: 60000, burst: workerData.burst }, 1).allowed) allowed++;
      parentPort.postMessage(allowed);
    });`;
  const workers = Array.from({ length: threads }, () => new Worker(code, { eval: true, workerData: { store: STORE, memory, start, takes, burst } }));
  const results = workers.map((w) => once(w, 'message') as Promise<[number]>);
  await new Promise((resolve) => setTimeout(resolve, 200));
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const counts = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  return counts.reduce((sum, [n]) => sum + n, 0);
}

test('two threads taking from one key at once allow exactly burst + 1 between them', async () => {
  assert.equal(await takeInThreads(2, 5000, 49), 50);
  assert.equal(await takeInThreads(4, 2000, 0), 1);
});

test('a key is found again in its bucket; a full bucket gives up its stale or lowest slot', () => {
  const memory = allocateSharedTable(1);
  const table = new SharedTable(memory);
  assert.equal(table.capacity, WAYS, 'one bucket');
  const store = new SharedRateLimitStore(memory, () => 1000);
  const rule = { interval: 100, burst: 0 };
  assert.equal(store.take('a', rule, 1).allowed, true);
  assert.equal(store.take('a', rule, 1).allowed, false, 'the same key is found');
  for (let i = 0; i < WAYS * 3; i++) store.take(`other-${i}`, rule, 1);
  // One bucket of WAYS slots, all taken: every new key pushed the lowest TAT out; the bucket stays full.
  assert.equal(store.size, WAYS);
  store.reset('a');
  assert.equal(store.take('a', rule, 1).allowed, true, 'reset forgets the key');
});

test('connection counts: open to the limit, close frees, the slot is let go at zero', () => {
  const counts = new SharedConnectionCounts(allocateSharedTable(100));
  assert.equal(counts.open('c', 2), true);
  assert.equal(counts.open('c', 2), true);
  assert.equal(counts.open('c', 2), false);
  counts.close('c');
  assert.equal(counts.open('c', 2), true);
  counts.close('c');
  counts.close('c');
  assert.equal(counts.size, 0);
});

test('a lock whose holder died holding it (a terminated worker) is taken over, not waited on forever', () => {
  const memory = allocateSharedTable(1);
  new SharedTable(memory).lock(0);
  const store = new SharedRateLimitStore(memory);
  const started = performance.now();
  assert.equal(store.take('a', { interval: 60_000, burst: 0 }, 1).allowed, true);
  assert.ok(performance.now() - started < 5000);
  assert.equal(store.take('a', { interval: 60_000, burst: 0 }, 1).allowed, false, 'and released after use');
});
