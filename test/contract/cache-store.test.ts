/**
 * The CacheStore contract: every store implementation must pass this suite (memory, disk; a
 * shared store for several instances later). Stores are driven directly, as the cache uses them.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { RedisState } from '../../src/core/redis-state.ts';
import { TieredStore } from '../../src/cache/tiered-store.ts';
import { connectedRedisState, redisMissing, startRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/http.ts';
import { DiskStore } from '../../src/cache/disk-store.ts';
import type { CachedEntry, EntryMeta } from '../../src/cache/entry.ts';
import { MemoryStore } from '../../src/cache/memory-store.ts';
import type { CacheStore, StoreLimits } from '../../src/cache/store.ts';
import { storedFacts } from '../helpers/cache.ts';
import { tempDir } from '../helpers/process.ts';

type MakeStore = (t: TestContext, limits: StoreLimits) => Promise<CacheStore>;

const storeDir = (t: TestContext): Promise<string> => tempDir(t, 'gatehouse-store-');

/** The suite's redis-server (started by the redis suites' before hook), and the stops to run after. */
let redisUrl = '';
const stops: (() => unknown)[] = [];
let prefixes = 0;

/** A connected RedisState on the suite's server, with a key prefix of its own unless given. */
async function redisState(t: TestContext, prefix = `cache-contract${++prefixes}:`): Promise<RedisState> {
  const { state } = await connectedRedisState(redisUrl, prefix);
  t.after(() => state.close());
  return state;
}

const STORES: Record<string, MakeStore> = {
  memory: async (t, limits) => {
    const store = new MemoryStore(limits);
    t.after(() => store.close());
    return store;
  },
  disk: async (t, limits) => {
    const store = new DiskStore(await storeDir(t), limits);
    t.after(() => store.close());
    await store.ready();
    return store;
  },
  'redis (memory in front of Redis)': async (t, limits) => {
    const store = new TieredStore(await redisState(t), 'contract', limits);
    t.after(() => store.close());
    return store;
  },
};

/** Stores whose every tier is bounded by their own size (a Redis tier is bounded by Redis's maxmemory). */
const SELF_BOUNDED = new Set(['memory', 'disk']);
/** Suites that need a redis-server: skipped without one. */
const NEEDS_REDIS = new Set(['redis (memory in front of Redis)']);

function needRedis(): void {
  before(async () => {
    redisUrl = (await startRedis({ after: (fn) => stops.push(fn) })).url;
  });
  after(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
}

const LIMITS: StoreLimits = { maxSize: 64 * 1024 ** 2, maxObjectSize: 8 * 1024 ** 2 };

function meta(key: string, over: Partial<EntryMeta> = {}): EntryMeta {
  return {
    ...storedFacts(Date.now()),
    key,
    variant: '',
    vary: [],
    status: 200,
    headers: ['content-type', 'text/plain', 'etag', '"1"'],
    upstreamStatus: '',
    requestTime: Date.now(),
    tags: [],
    size: -1,
    ...over,
  };
}

/** Stores `body` (written in `chunks` pieces) and resolves with the entry (or null). */
async function put(store: CacheStore, m: EntryMeta, body: Buffer | string, chunks = 1, declared = -1): Promise<CachedEntry | null> {
  const writer = store.open(m, declared);
  if (writer === null) return null;
  const data = Buffer.from(body);
  const step = Math.ceil(data.length / chunks) || 1;
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += step) parts.push(data.subarray(i, i + step));
  await pipeline(Readable.from(parts), writer);
  return writer.stored;
}

async function read(entry: CachedEntry, start = 0, end = entry.size - 1): Promise<string> {
  const stream = await entry.body.open(start, end);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function get(store: CacheStore, key: string): Promise<readonly CachedEntry[] | undefined> {
  return store.get(key);
}

for (const [kind, make] of Object.entries(STORES)) {
  const redis = NEEDS_REDIS.has(kind);
  describe(`CacheStore contract: ${kind}`, { skip: redis ? (redisMissing ?? false) : false }, () => {
    if (redis) needRedis();
    test('a key never stored is a miss', async (t) => {
      const store = await make(t, LIMITS);
      assert.equal(await get(store, 'example.com/none'), undefined);
    });

    test('a stored response comes back with its description, size and body', async (t) => {
      const store = await make(t, LIMITS);
      const entry = await put(store, meta('example.com/a'), 'hello world', 3);
      assert.ok(entry !== null);
      const [found] = (await get(store, 'example.com/a')) ?? [];
      assert.ok(found !== undefined);
      assert.equal(found.status, 200);
      assert.equal(found.size, 11);
      assert.equal(found.validators.etag, '"1"');
      assert.deepEqual([...found.head], ['content-type', 'text/plain', 'etag', '"1"', 'content-length', '11']);
      assert.equal(await read(found), 'hello world');
      assert.equal(await read(found, 6, 10), 'world', 'ranges of the body');
    });

    test('an entry is visible only once its body is complete; a destroyed writer stores nothing', async (t) => {
      const store = await make(t, LIMITS);
      const writer = store.open(meta('example.com/partial'), -1);
      assert.ok(writer !== null);
      writer.on('error', () => {});
      writer.write(Buffer.from('half'));
      assert.equal(await get(store, 'example.com/partial'), undefined);
      writer.destroy(new Error('upstream failed'));
      assert.equal(await writer.stored, null);
      assert.equal(await get(store, 'example.com/partial'), undefined);
    });

    test('variants live side by side, most recent first; the same variant is replaced', async (t) => {
      const store = await make(t, LIMITS);
      const vary = ['accept-encoding'];
      await put(store, meta('k', { variant: 'gzip', vary }), 'gz-1');
      await put(store, meta('k', { variant: 'br', vary }), 'br-1');
      await put(store, meta('k', { variant: 'gzip', vary }), 'gz-2');
      const entries = (await get(store, 'k')) ?? [];
      assert.deepEqual(
        entries.map((e) => e.variant),
        ['gzip', 'br'],
      );
      assert.equal(await read(entries[0] as CachedEntry), 'gz-2');
      assert.equal(store.stats().entries, 2);
    });

    test('delete removes every variant of a key; deletePrefix and deleteTag', async (t) => {
      const store = await make(t, LIMITS);
      await put(store, meta('h/a', { variant: '1', vary: ['x'] }), 'a1');
      await put(store, meta('h/a', { variant: '2', vary: ['x'] }), 'a2');
      await put(store, meta('h/static/1', { tags: ['static', 'v1'] }), 's1');
      await put(store, meta('h/static/2', { tags: ['static'] }), 's2');
      await put(store, meta('h/other', { tags: ['v1'] }), 'o');
      assert.equal(await store.delete('h/a'), 2);
      assert.equal(await get(store, 'h/a'), undefined);
      assert.equal(await store.deleteTag('v1'), 2);
      assert.equal(await get(store, 'h/other'), undefined);
      assert.equal(await store.deletePrefix('h/static/'), 1);
      assert.equal(store.stats().entries, 0);
      assert.equal(await store.delete('h/none'), 0);
    });

    test('bodies past the object limit are not stored, declared or streamed', async (t) => {
      const store = await make(t, { maxSize: LIMITS.maxSize, maxObjectSize: 1000 });
      assert.equal(store.open(meta('big'), 5000), null, 'a declared length over the limit is refused at once');
      assert.equal(await put(store, meta('big'), Buffer.alloc(5000, 'x'), 10), null);
      assert.equal(await get(store, 'big'), undefined);
      assert.ok((await put(store, meta('small'), Buffer.alloc(1000, 'x'))) !== null);
    });

    test('large bodies are streamed in and out intact', async (t) => {
      const store = await make(t, LIMITS);
      const body = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31) % 251;
      const entry = await put(store, meta('large'), body, 48);
      assert.ok(entry !== null);
      const [found] = (await get(store, 'large')) ?? [];
      assert.ok(found !== undefined);
      const stream = await found.body.open(0, found.size - 1);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(body));
    });

    // Not part of the contract for a Redis tier: Redis's maxmemory bounds it (docs/scaling.md).
    if (SELF_BOUNDED.has(kind)) test('the store stays within its size: the least recently used goes first', async (t) => {
      const store = await make(t, { maxSize: 40_000, maxObjectSize: 20_000 });
      await put(store, meta('one'), Buffer.alloc(10_000));
      await put(store, meta('two'), Buffer.alloc(10_000));
      await put(store, meta('three'), Buffer.alloc(10_000));
      await get(store, 'one'); // used: gets a second chance
      await put(store, meta('four'), Buffer.alloc(10_000));
      assert.ok(store.stats().bytes <= 40_000);
      assert.ok((await get(store, 'one')) !== undefined, 'recently used survives');
      assert.equal(await get(store, 'two'), undefined, 'least recently used is evicted');
      assert.ok(store.stats().evictions >= 1);
    });

    test('configure applies smaller limits at once', async (t) => {
      const store = await make(t, LIMITS);
      for (const key of ['a', 'b', 'c']) await put(store, meta(key), Buffer.alloc(10_000));
      store.configure({ maxSize: 15_000, maxObjectSize: 10_000 });
      assert.ok(store.stats().bytes <= 15_000);
      assert.equal(store.stats().maxSize, 15_000);
    });

    test('update replaces the description and keeps the body', async (t) => {
      const store = await make(t, LIMITS);
      const entry = await put(store, meta('u'), 'body');
      assert.ok(entry !== null);
      const later = Date.now() + 1000;
      const updated = await store.update(entry, meta('u', { headers: ['etag', '"1"', 'x-new', 'yes'], responseTime: later, lifetime: 120 }));
      assert.ok(updated !== null);
      const [found] = (await get(store, 'u')) ?? [];
      assert.equal(found, updated);
      assert.equal(found?.lifetime, 120);
      assert.ok(found?.head.includes('x-new'));
      assert.equal(found?.size, 4);
      assert.equal(await read(found as CachedEntry), 'body');
      assert.equal(await store.update(entry, meta('u')), null, 'the replaced entry is no longer stored');
    });
  });
}

describe('disk store specifics', () => {
  test('entries survive a restart; leftovers of interrupted writes are removed', async (t) => {
    const dir = await storeDir(t);
    const first = new DiskStore(dir, LIMITS);
    await first.ready();
    await put(first, meta('example.com/kept', { tags: ['t'] }), 'persisted body', 4);
    const pending = first.open(meta('example.com/interrupted'), -1);
    pending?.write(Buffer.from('never finished'));
    first.close();
    const second = new DiskStore(dir, LIMITS);
    t.after(() => second.close());
    await second.ready();
    const [found] = (await get(second, 'example.com/kept')) ?? [];
    assert.ok(found !== undefined, 'the complete entry is back');
    assert.equal(await read(found), 'persisted body');
    assert.deepEqual([...found.tags], ['t']);
    assert.equal(await get(second, 'example.com/interrupted'), undefined);
    assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'temporary files are cleared');
    pending?.destroy();
  });

  test('a directory in use by another live process is refused', async (t) => {
    const dir = await storeDir(t);
    const { writeFile } = await import('node:fs/promises');
    // PID 1 is always alive.
    await writeFile(join(dir, 'lock'), '1');
    assert.throws(() => new DiskStore(dir, LIMITS), /in use by process 1/);
  });
});

describe('redis store specifics: two instances on one Redis', { skip: redisMissing ?? false }, () => {
  needRedis();
  const pair = async (t: TestContext): Promise<[TieredStore, TieredStore]> => {
    const prefix = `cache-pair${++prefixes}:`;
    const a = new TieredStore(await redisState(t, prefix), 'shared', LIMITS);
    const b = new TieredStore(await redisState(t, prefix), 'shared', LIMITS);
    t.after(() => {
      a.close();
      b.close();
    });
    return [a, b];
  };

  test('stored through A, found by B (from Redis, then from its own memory)', async (t) => {
    const [a, b] = await pair(t);
    await put(a, meta('h/shared', { tags: ['t1'] }), 'shared body', 3);
    const found = b.get('h/shared');
    assert.ok(found instanceof Promise, 'an L1 miss asks Redis');
    const [entry] = (await found) ?? [];
    assert.ok(entry !== undefined);
    assert.equal(await read(entry), 'shared body');
    assert.deepEqual([...entry.tags], ['t1']);
    assert.ok(Array.isArray(b.get('h/shared')), 'then an L1 hit, synchronous');
    assert.equal(b.stats().tiers?.['l2_hits'], 1);
  });

  test('variants read from Redis come most recent first, and stay in that order in B\'s memory', async (t) => {
    const [a, b] = await pair(t);
    const vary = ['accept-encoding'];
    const now = Date.now();
    await put(a, meta('h/variants', { variant: 'gzip', vary, responseTime: now - 2000 }), 'gz');
    await put(a, meta('h/variants', { variant: 'br', vary, responseTime: now - 1000 }), 'br');
    const found = b.get('h/variants');
    assert.ok(found instanceof Promise, 'an L1 miss asks Redis');
    const fromRedis = (await found) ?? [];
    assert.deepEqual(fromRedis.map((e) => e.variant), ['br', 'gzip']);
    assert.deepEqual(await Promise.all(fromRedis.map((e) => read(e))), ['br', 'gz']);
    const local = b.get('h/variants');
    assert.ok(Array.isArray(local), 'then an L1 hit');
    assert.deepEqual(local.map((e) => e.variant), ['br', 'gzip']);
  });

  test('a delete, prefix or tag purge on B removes the entry from A too (both tiers)', async (t) => {
    const [a, b] = await pair(t);
    await put(a, meta('h/x/1', { tags: ['red'] }), 'one');
    await put(a, meta('h/x/2'), 'two');
    await put(a, meta('h/y', { tags: ['red'] }), 'y');
    assert.equal(await b.delete('h/x/1'), 1);
    await waitFor(() => a.get('h/x/1') instanceof Promise, 2000, 'A to drop its copy');
    assert.equal(await a.get('h/x/1'), undefined);
    assert.equal(await b.deletePrefix('h/x/'), 1);
    await waitFor(() => a.get('h/x/2') instanceof Promise, 2000, 'A to drop the prefix');
    assert.equal(await a.get('h/x/2'), undefined);
    assert.equal(await b.deleteTag('red'), 1);
    await waitFor(() => a.get('h/y') instanceof Promise, 2000, 'A to drop the tag');
    assert.equal(await a.get('h/y'), undefined);
  });

  test('a revalidation reaches Redis, unless a newer response replaced the entry meanwhile', async (t) => {
    const [a, b] = await pair(t);
    const old = await put(a, meta('h/r'), 'old');
    await put(a, meta('h/r'), 'newer');
    assert.ok(old !== null);
    // The 304 for the replaced entry arrives late: Redis keeps the newer response.
    await a.update(old, meta('h/r', { lifetime: 999 }));
    const [fromRedis] = (await b.get('h/r')) ?? [];
    assert.ok(fromRedis !== undefined, 'the newer response is still whole in Redis');
    assert.equal(await read(fromRedis), 'newer');
    assert.notEqual(fromRedis.lifetime, 999);
    // A revalidation of the current entry is written through, and B drops its copy to read it.
    const [current] = (await a.get('h/r')) ?? [];
    await a.update(current as CachedEntry, meta('h/r', { lifetime: 777 }));
    await waitFor(async () => (await b.get('h/r'))?.[0]?.lifetime === 777, 2000, 'B to drop its copy and read the new description');
    const [updated] = (await b.get('h/r')) ?? [];
    assert.equal(await read(updated as CachedEntry), 'newer');
  });

  test('a newer response stored through B replaces the copy A holds', async (t) => {
    const [a, b] = await pair(t);
    await put(a, meta('h/v'), 'old');
    await put(b, meta('h/v'), 'new');
    await waitFor(() => a.get('h/v') instanceof Promise, 2000, 'A to drop its old copy');
    const [entry] = (await a.get('h/v')) ?? [];
    assert.equal(await read(entry as CachedEntry), 'new');
  });
});
