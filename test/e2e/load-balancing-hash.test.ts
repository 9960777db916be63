/** Consistent hashing, its keys, and sticky sessions, end to end. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { requestFrom } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';
import { client, runMany, startNamedBackends, startRestartable, tally, type Restartable } from '../helpers/upstreams.ts';

const KEYS = 10_000;

function hashConfig(backends: readonly Restartable[], hash: Record<string, unknown>, extra: Record<string, unknown> = {}): Omit<ConfigInput, 'listen'> {
  return {
    upstreams: { app: { balance: 'hash', hash, servers: backends.map((b) => ({ url: b.url })), ...extra } } as ConfigInput['upstreams'],
    routes: [{ match: {}, upstream: 'app' }],
  };
}

function moved(before: readonly string[], after: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) count++;
  return count;
}

test('consistent hashing: removing or adding one of 10 servers remaps at most 15% of 10,000 keys', async (t) => {
  const backends = await startNamedBackends(t, 10);
  const hash = { key: 'header', name: 'x-user' };
  const proxy = await startProxy(t, hashConfig(backends, hash));
  const get = client(t, proxy.url);
  const route = async (): Promise<string[]> => {
    const replies = await runMany(KEYS, 16, (i) => get('/', { headers: { 'x-user': `user-${i}` } }));
    assert.ok(replies.every((r) => r.status === 200));
    return replies.map((r) => r.body);
  };
  const reload = (servers: readonly Restartable[]): Promise<void> =>
    proxy.gatehouse.reload(
      configFromObject({ listen: proxy.gatehouse.config.listen, access_log: { enabled: false }, ...hashConfig(servers, hash) }),
    );

  const ten = await route();
  const shares = Object.values(tally(ten));
  assert.equal(shares.length, 10, 'every server gets keys');
  assert.ok(Math.min(...shares) > KEYS / 10 / 2, `keys spread evenly enough: ${JSON.stringify(tally(ten))}`);

  const removed = backends[4] as Restartable;
  await reload(backends.filter((b) => b !== removed));
  const nine = await route();
  const afterRemoval = moved(ten, nine);
  const onRemoved = ten.filter((name) => name === removed.name).length;
  assert.ok(afterRemoval >= onRemoved, 'the keys of the removed server moved');
  assert.ok(afterRemoval <= KEYS * 0.15, `removing one server moved ${afterRemoval} keys`);

  await reload(backends);
  const tenAgain = await route();
  const afterAdding = moved(nine, tenAgain);
  assert.ok(afterAdding <= KEYS * 0.15, `adding one server moved ${afterAdding} keys`);
  assert.deepEqual(tenAgain, ten, 'the same servers give the same mapping: a key always goes to the same server');
});

test('hash keys: client IP, cookie, path, query parameter; a request without the key is spread', async (t) => {
  const backends = await startNamedBackends(t, 5);
  const upstream = (hash: Record<string, unknown>) => ({ balance: 'hash', hash, servers: backends.map((b) => ({ url: b.url })) });
  const proxy = await startProxy(t, {
    upstreams: {
      ip: upstream({ key: 'client_ip' }),
      cookie: upstream({ key: 'cookie', name: 'session' }),
      path: upstream({ key: 'path' }),
      query: upstream({ key: 'query', name: 'id' }),
    } as ConfigInput['upstreams'],
    routes: [
      { match: { path_prefix: '/ip' }, upstream: 'ip' },
      { match: { path_prefix: '/cookie' }, upstream: 'cookie' },
      { match: { path_prefix: '/path' }, upstream: 'path' },
      { match: { path_prefix: '/query' }, upstream: 'query' },
    ],
  });
  const get = client(t, proxy.url, 4);
  const servers = async (count: number, request: (i: number) => Promise<{ body: string }>): Promise<string[]> =>
    (await runMany(count, 4, request)).map((r) => r.body);

  // Every request comes from 127.0.0.1: one server.
  assert.equal(new Set(await servers(50, () => get('/ip'))).size, 1);
  // Other client addresses spread, each always to its own server.
  const byAddress = async (): Promise<string[]> => {
    const names: string[] = [];
    for (let i = 2; i < 42; i++) names.push((await requestFrom(`127.0.0.${i}`, `${proxy.url}/ip`)).body);
    return names;
  };
  const firstPass = await byAddress();
  assert.ok(new Set(firstPass).size >= 3, `40 addresses over 5 servers: ${JSON.stringify(tally(firstPass))}`);
  assert.deepEqual(await byAddress(), firstPass, 'the same address, the same server');
  // One cookie value → one server, whatever else the request carries; different values spread.
  assert.equal(new Set(await servers(30, (i) => get(`/cookie/${i}`, { headers: { cookie: `a=${i}; session=abc; z=1` } }))).size, 1);
  assert.ok(new Set(await servers(200, (i) => get('/cookie', { headers: { cookie: `session=s${i}` } }))).size >= 4);
  // The path decides, not the query.
  assert.equal(new Set(await servers(30, (i) => get(`/path/same?n=${i}`))).size, 1);
  assert.ok(new Set(await servers(200, (i) => get(`/path/p${i}`))).size >= 4);
  // One parameter decides, not the others.
  assert.equal(new Set(await servers(30, (i) => get(`/query?x=${i}&id=42&y=${i}`))).size, 1);
  assert.ok(new Set(await servers(200, (i) => get(`/query?id=${i}`))).size >= 4, 'and its values spread');
  // Without the key: spread at random.
  assert.ok(new Set(await servers(200, () => get('/query?x=1'))).size >= 4);
});

test('hash with bounded loads: a hot key spills over once its server holds more than its share', async (t) => {
  const held: (() => void)[] = [];
  const hold = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    req.resume();
    held.push(() => res.end(name));
  };
  const backends = [await startRestartable(t, 'b0', hold('b0')), await startRestartable(t, 'b1', hold('b1')), await startRestartable(t, 'b2', hold('b2'))];
  const proxy = await startProxy(t, hashConfig(backends, { key: 'header', name: 'x-user', load_factor: 1.25 }));
  const get = client(t, proxy.url);
  const pending = Array.from({ length: 9 }, () => get('/', { headers: { 'x-user': 'hot' } }));
  await waitFor(() => held.length === 9, 2000, 'nine requests held');
  const counts = backends.map((b) => b.requests.length);
  // ceil(1.25 × (m + 1) / 3) caps each server: never more than 4 of 9.
  assert.ok(Math.max(...counts) <= 4, `no server holds more than the bound: ${counts}`);
  for (const release of held) release();
  const replies = await Promise.all(pending);
  assert.ok(replies.every((r) => r.status === 200));
});

test('sticky sessions: a signed cookie pins the client to its server while that server is available', async (t) => {
  const backends = await startNamedBackends(t, 3);
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: backends.map((b) => ({ url: b.url })), sticky: { cookie: 'lb', max_age: '1h' } } },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const get = client(t, proxy.url, 2);
  const first = await get('/');
  const setCookie = String(first.headers['set-cookie']);
  assert.match(setCookie, /^lb=[\w-]{22}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
  assert.ok(!setCookie.includes('127.0.0.1') && !setCookie.includes(String(backends[0]?.port)), 'the cookie names no backend');
  const cookie = setCookie.split(';')[0] as string;

  // Pinned: always the same server, and no new cookie.
  const pinned = await runMany(30, 2, () => get('/', { headers: { cookie: `other=1; ${cookie}` } }));
  assert.deepEqual(new Set(pinned.map((r) => r.body)), new Set([first.body]));
  assert.ok(pinned.every((r) => r.headers['set-cookie'] === undefined));

  // A forged or stale value is ignored: the client is balanced and gets a genuine cookie.
  const forged = await get('/', { headers: { cookie: 'lb=AAAAAAAAAAAAAAAAAAAAAA' } });
  assert.match(String(forged.headers['set-cookie']), /^lb=[\w-]{22};/);

  // Its server drained: the client moves to another one and is pinned there.
  const server = backends.find((b) => b.name === first.body) as Restartable;
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  const drained = await fetch(`${admin}/upstreams/app/servers/${encodeURIComponent(`127.0.0.1:${server.port}`)}/drain`, { method: 'POST' });
  assert.equal(drained.status, 200);
  assert.equal(((await drained.json()) as { state: string }).state, 'draining');
  const moved = await get('/', { headers: { cookie } });
  assert.notEqual(moved.body, first.body);
  const newCookie = String(moved.headers['set-cookie']).split(';')[0] as string;
  assert.notEqual(newCookie, cookie);
  const repinned = await runMany(10, 2, () => get('/', { headers: { cookie: newCookie } }));
  assert.deepEqual(new Set(repinned.map((r) => r.body)), new Set([moved.body]));
});
