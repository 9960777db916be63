/** POST /explain: which route, why not the others, middlewares, upstream, server, cache (docs/admin-api.md#explain). */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Primary } from '../../src/workers/primary.ts';
import { call } from '../helpers/admin.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { request } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

async function setup(t: TestContext): Promise<{ config: Omit<ConfigInput, 'listen'>; a: string; b: string }> {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const cached = await startBackend(t, (_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('static'));
  const config: Omit<ConfigInput, 'listen'> = {
    admin: { address: '127.0.0.1:0' },
    upstreams: { api: { servers: [{ url: a.url }, { url: b.url }] }, static: { servers: [{ url: cached.url }] } },
    routes: [
      { name: 'admin-only', match: { host: ['admin.example'] }, respond: { status: 200, body: 'hi' } },
      { name: 'api', match: { path_prefix: '/api', methods: ['GET', 'POST'], headers: { 'x-version': '2' } }, upstream: 'api', access: { allow: ['127.0.0.0/8'] } },
      { name: 'old', match: { path: '/old' }, redirect: { to: '/new', status: 301 } },
      { name: 'static', match: { path_prefix: '/static' }, upstream: 'static', cache: { enabled: true } },
      { name: 'rest', match: { path_prefix: '/' }, upstream: 'api' },
    ],
  };
  return { config, a: `127.0.0.1:${a.port}`, b: `127.0.0.1:${b.port}` };
}

test('explain names the route, why the others did not match, the middlewares and the server the balancer would choose, changing nothing', async (t) => {
  const { config, a, b } = await setup(t);
  const proxy = await startProxy(t, config);
  const port = proxy.gatehouse.adminAddress?.port ?? 0;
  const explain = async (query: unknown): Promise<ReturnType<typeof JSON.parse>> => {
    const answer = await call(port, 'POST', '/explain', JSON.stringify(query), { 'content-type': 'application/json' });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  };
  const query = { method: 'GET', url: 'http://www.example/api/users?id=1', headers: { 'X-Version': '2' } };
  const first = await explain(query);
  assert.deepEqual(first.route, { name: 'api', index: 1 });
  assert.deepEqual(first.routes[0], { name: 'admin-only', index: 0, matched: false, reason: 'host is admin.example, but the host is www.example' });
  assert.deepEqual(first.routes[1], { name: 'api', index: 1, matched: true, reason: 'every condition holds' });
  assert.match(first.routes[4].reason, /^not tried: api matched first \(this one would match too\)$/);
  assert.equal(first.action, 'forward');
  assert.equal(first.upstream, 'api');
  assert.ok(first.middlewares.includes('ip_filter'), `the access rule runs: ${first.middlewares}`);
  assert.deepEqual(first.cache, { would_answer: false, reason: 'the route has no cache' });
  assert.ok([a, b].includes(first.server));
  // Explaining does not move the round robin: asked again, the same; then a request goes there.
  assert.equal((await explain(query)).server, first.server);
  const served = JSON.parse((await request(`${proxy.url}/api/users`, { headers: { host: 'www.example', 'x-version': '2' } })).body).name;
  assert.equal(`127.0.0.1:${served === 'a' ? a.split(':')[1] : b.split(':')[1]}`, first.server);
  assert.notEqual((await explain(query)).server, first.server, 'the request moved the rotation on');

  assert.deepEqual(first.admission, { allowed: true, reason: '127.0.0.1 passes the access rules and is not banned (rate limits not counted)' });
  const outsider = await explain({ ...query, client: '203.0.113.9' });
  assert.deepEqual(outsider.admission, { allowed: false, reason: "203.0.113.9 is refused by the route's access rules (403)" });
  assert.equal((await call(port, 'POST', '/bans/127.0.0.1?duration=1m')).status, 200);
  assert.match((await explain(query)).admission.reason, /^127\.0\.0\.1 is banned for \d+ s more \(429\)$/);
  assert.equal((await call(port, 'DELETE', '/bans/127.0.0.1')).status, 200);

  const wrongHeader = await explain({ method: 'GET', url: '/api/users', headers: { host: 'www.example', 'x-version': '1' } });
  assert.equal(wrongHeader.routes[1].reason, 'header x-version is "2", but the header x-version is "1"');
  assert.deepEqual(wrongHeader.route, { name: 'rest', index: 4 });
  const wrongMethod = await explain({ method: 'DELETE', url: '/api/users', headers: { 'x-version': '2' } });
  assert.equal(wrongMethod.routes[1].reason, 'method is one of GET, POST, HEAD, but the method is DELETE');
  const wrongPath = await explain({ method: 'GET', url: '/other', headers: {} });
  assert.equal(wrongPath.routes[1].reason, 'path is under /api, but the path is /other');
  assert.equal(wrongPath.routes[2].reason, 'path is /old, but the path is /other');

  const redirect = await explain({ method: 'GET', url: '/old', headers: {} });
  assert.equal(redirect.action, 'redirect');
  assert.deepEqual(redirect.redirect, { status: 301, to: '/new' });
  assert.equal(redirect.upstream, null);
  assert.equal(redirect.server, null);
  const respond = await explain({ method: 'GET', url: 'http://admin.example/', headers: {} });
  assert.equal(respond.action, 'respond');

  // The path as the proxy normalises it.
  assert.equal((await explain({ method: 'GET', url: '/static/../old', headers: {} })).route.name, 'old');
  assert.equal((await call(port, 'POST', '/explain', '{nope')).status, 400);
  assert.equal((await call(port, 'POST', '/explain', JSON.stringify({ method: 'GET' }))).status, 400);
  const huge = await call(port, 'POST', '/explain', JSON.stringify({ method: 'GET', url: '/', headers: { big: 'x'.repeat(65 * 1024) } }));
  assert.deepEqual({ status: huge.status, body: huge.body }, { status: 413, body: { error: 'the body is over 65536 bytes' } });
});

test('explain says whether the cache would answer', async (t) => {
  const { config } = await setup(t);
  const proxy = await startProxy(t, config);
  const port = proxy.gatehouse.adminAddress?.port ?? 0;
  const query = JSON.stringify({ method: 'GET', url: '/static/app.js', headers: { host: 'www.example' } });
  const before = (await call(port, 'POST', '/explain', query)).body;
  assert.equal(before.route.name, 'static');
  assert.equal(before.cache.would_answer, false);
  assert.match(before.cache.reason, /^nothing stored under /);
  assert.ok(before.middlewares.includes('cache'));
  assert.equal((await request(`${proxy.url}/static/app.js`, { headers: { host: 'www.example' } })).body, 'static');
  const after = (await call(port, 'POST', '/explain', query)).body;
  assert.equal(after.cache.would_answer, true, after.cache.reason);
  assert.match(after.cache.reason, /^a fresh stored response \(ttl \d+ s\)$/);
  const post = (await call(port, 'POST', '/explain', JSON.stringify({ method: 'POST', url: '/static/app.js', headers: { host: 'www.example' } }))).body;
  assert.equal(post.cache.would_answer, false);
  const forced = (await call(port, 'POST', '/explain', JSON.stringify({ method: 'GET', url: '/static/app.js', headers: { host: 'www.example', 'cache-control': 'no-cache' } }))).body;
  assert.equal(forced.cache.would_answer, false);
  assert.match(forced.cache.reason, /revalidation/);
});

test('with workers: 2, explain answers from a worker', async (t) => {
  const { config, a, b } = await setup(t);
  const full = configFromObject({ listen: [{ address: '127.0.0.1:0' }], access_log: { enabled: false }, ...config });
  const primary = await Primary.start(full, { logger: pino({ level: 'silent' }), workers: 2 });
  t.after(() => primary.stop(500));
  const answer = await call(primary.adminAddress?.port ?? 0, 'POST', '/explain', JSON.stringify({ method: 'GET', url: '/anything', headers: {} }));
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.route, { name: 'rest', index: 4 });
  assert.ok([a, b].includes(answer.body.server));
});
