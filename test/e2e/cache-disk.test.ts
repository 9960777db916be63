import assert from 'node:assert/strict';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { DiskStore } from '../../src/cache/disk-store.ts';
import { configFromObject } from '../../src/config/load.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { cacheStatus, cachingConfig, fetchRaw, startOrigin } from '../helpers/cache.ts';
import { waitFor } from '../helpers/http.ts';
import { tempDir } from '../helpers/process.ts';

/** The client has its answer before the entry is on disk (renamed into place): wait for it. */
async function stored(gatehouse: Gatehouse, entries: number): Promise<void> {
  await waitFor(() => (gatehouse.caches().stats()['disk'] as { entries: number }).entries === entries, 5000, 'the entry on disk');
}

/** The key holds the Host, and each start takes another port: the same public name for both. */
const HOST = 'www.example';

const cacheDir = (t: TestContext): Promise<string> => tempDir(t, 'gatehouse-disk-cache-');

/** A Gatehouse with a disk store in `dir`; not stopped automatically (the restart test stops it). */
async function start(originUrl: string, dir: string): Promise<{ gatehouse: Gatehouse; url: string }> {
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    access_log: { enabled: false },
    ...cachingConfig(originUrl, { store: 'disk' }, { cache: { stores: { disk: { type: 'disk', path: dir, max_object_size: '16mb' } } } }),
  });
  const gatehouse = await Gatehouse.start(config, { logger: pino({ level: 'silent' }) });
  await gatehouse.caches().ready();
  return { gatehouse, url: `http://127.0.0.1:${gatehouse.addresses[0]?.port}` };
}

test('disk store: a large body is streamed into the store and streamed out of it, ranges included', async (t) => {
  const body = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 13) % 256;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    res.end(body);
  });
  const proxy = await start(origin.url, await cacheDir(t));
  t.after(() => proxy.gatehouse.stop(500));
  const miss = await fetchRaw(`${proxy.url}/blob`);
  assert.ok(miss.body.equals(body));
  await stored(proxy.gatehouse, 1);
  const hit = await fetchRaw(`${proxy.url}/blob`);
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.headers['content-length'], String(body.length));
  assert.ok(hit.body.equals(body));
  const range = await fetchRaw(`${proxy.url}/blob`, { range: 'bytes=1000000-1000009' });
  assert.equal(range.status, 206);
  assert.ok(range.body.equals(body.subarray(1_000_000, 1_000_010)));
  assert.equal(origin.count('/blob'), 1);
});

test('the disk cache survives a restart', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', etag: '"persist"', 'surrogate-key': 'kept' });
    res.end('written before the restart');
  });
  const dir = await cacheDir(t);
  const first = await start(origin.url, dir);
  await fetchRaw(`${first.url}/p`, { host: HOST });
  await stored(first.gatehouse, 1);
  await first.gatehouse.stop(500);

  const second = await start(origin.url, dir);
  t.after(() => second.gatehouse.stop(500));
  const hit = await fetchRaw(`${second.url}/p`, { host: HOST });
  assert.equal(cacheStatus(hit), 'gatehouse; hit');
  assert.equal(hit.body.toString(), 'written before the restart');
  assert.ok(Number(hit.headers['age']) >= 0);
  assert.equal(hit.headers['etag'], '"persist"', 'the stored head survives too');
  assert.equal(hit.headers['surrogate-key'], undefined, 'and tag headers stay hidden from clients');
  assert.equal(origin.count('/p'), 1);
  assert.equal(await second.gatehouse.caches().purge({ tag: 'kept' }), 1, 'tags survive too');
});

test('a directory locked by the process an upgrade replaces is waited for: nothing is written until its lock goes, then it is taken', async (t) => {
  const dir = await cacheDir(t);
  const lock = join(dir, 'lock');
  // A live process other than this one: the parent (the test runner).
  const predecessor = process.ppid;
  await writeFile(lock, String(predecessor));
  const limits = { maxSize: 1 << 20, maxObjectSize: 1 << 16 };
  assert.throws(() => new DiskStore(dir, limits), /is in use by process/, 'refused without the upgrade');
  const store = new DiskStore(dir, limits, predecessor);
  t.after(() => store.close());
  const meta = { key: 'k', variant: '', status: 200, headers: [], size: 0 } as unknown as Parameters<typeof store.open>[0];
  assert.equal(store.open(meta, 1), null, 'no writes while the directory is the predecessor\'s');
  await unlink(lock); // the predecessor's hand-over
  await store.ready();
  assert.equal(await readFile(lock, 'utf8'), String(process.pid));
  const writer = store.open(meta, 1);
  assert.notEqual(writer, null, 'writes once taken over');
  writer?.destroy();
});
