/** The admin API's token and its audit log (docs/admin-api.md#authentication). */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { call } from '../helpers/admin.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { errorOf, yaml } from '../helpers/config.ts';
import { collectingLogger } from '../helpers/logs.ts';
import { tempDir } from '../helpers/process.ts';

/** Starts a proxy with `admin`, its log lines collected. */
async function start(t: TestContext, admin: NonNullable<ConfigInput['admin']>): Promise<{ port: number; lines: Record<string, unknown>[] }> {
  const backend = await startBackend(t, echo('a'));
  const { logger, lines } = collectingLogger({ level: 'info', base: null });
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    admin,
    access_log: { enabled: false },
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app' }],
  });
  const gatehouse = await Gatehouse.start(config, { logger });
  t.after(() => gatehouse.stop(200));
  return { port: gatehouse.adminAddress?.port ?? 0, lines };
}

test('an admin address other than loopback needs a token', () => {
  assert.match(
    errorOf(yaml('listen: [{ address: 127.0.0.1:8080 }]', 'admin:', '  address: 0.0.0.0:9090')),
    /^gatehouse\.yaml:3:12 admin\.address: "0\.0\.0\.0:9090" is not a loopback address: set admin\.token_file or admin\.token_env/,
  );
  errorOf(yaml('listen: [{ address: 127.0.0.1:8080 }]', 'admin: { address: "[::]:9090", token_env: X, token_file: /t }'));
  // Loopback needs none.
  assert.throws(() => errorOf(yaml('listen: [{ address: 127.0.0.1:8080 }]', 'admin: { address: "[::1]:9090" }')), /accepted/);
});

test('with a token (environment variable), every endpoint but /healthz needs "Authorization: Bearer"', async (t) => {
  process.env.GATEHOUSE_TEST_ADMIN_TOKEN = 's3cret-token';
  t.after(() => delete process.env.GATEHOUSE_TEST_ADMIN_TOKEN);
  // On every address: a non-loopback one is what needs it.
  const { port } = await start(t, { address: '0.0.0.0:0', token_env: 'GATEHOUSE_TEST_ADMIN_TOKEN' });
  assert.equal((await call(port, 'GET', '/healthz')).status, 200);
  const denied = await call(port, 'GET', '/status');
  assert.equal(denied.status, 401);
  assert.match(String(denied.headers['www-authenticate']), /^Bearer/);
  assert.equal((await call(port, 'GET', '/config', undefined, { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await call(port, 'GET', '/config', undefined, { authorization: 's3cret-token' })).status, 401);
  assert.equal((await call(port, 'GET', '/status', undefined, { authorization: 'Bearer s3cret-token' })).status, 200);
  assert.equal((await call(port, 'POST', '/bans/192.0.2.1', undefined, { authorization: 'bearer s3cret-token' })).status, 200);
});

test('a token file is read at start; a missing one stops the start', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'token');
  await writeFile(file, 'from-a-file\n');
  const { port } = await start(t, { address: '127.0.0.1:0', token_file: file });
  assert.equal((await call(port, 'GET', '/status')).status, 401, 'a token set on loopback is required there too');
  assert.equal((await call(port, 'GET', '/status', undefined, { authorization: 'Bearer from-a-file' })).status, 200);
  await assert.rejects(start(t, { address: '127.0.0.1:0', token_file: join(dir, 'none') }), /admin\.token_file: cannot read/);
  await assert.rejects(start(t, { address: '127.0.0.1:0', token_env: 'GATEHOUSE_TEST_UNSET_TOKEN' }), /admin\.token_env: the environment variable GATEHOUSE_TEST_UNSET_TOKEN is not set/);
});

test('every change is one audit line: who, the endpoint and what changed; reads are not logged', async (t) => {
  process.env.GATEHOUSE_TEST_ADMIN_TOKEN2 = 'tok';
  t.after(() => delete process.env.GATEHOUSE_TEST_ADMIN_TOKEN2);
  const { port, lines } = await start(t, { address: '127.0.0.1:0', token_env: 'GATEHOUSE_TEST_ADMIN_TOKEN2' });
  const auth = { authorization: 'Bearer tok' };
  assert.equal((await call(port, 'POST', '/config/apply', 'listen: []\n')).status, 401);
  const refused = lines.find((line) => line.msg === 'admin change refused: no valid token');
  assert.deepEqual({ endpoint: refused?.endpoint, status: refused?.status, level: refused?.level }, { endpoint: 'POST /config/apply', status: 401, level: 40 });
  assert.equal(refused?.audit, true);
  assert.match(String(refused?.who), /^(::ffff:)?127\.0\.0\.1$/, 'no "(token)"');
  assert.equal((await call(port, 'GET', '/config')).status, 401);
  assert.equal(lines.filter((line) => line.msg === 'admin change refused: no valid token').length, 1, 'a refused read is not logged');
  await call(port, 'GET', '/status', undefined, auth);
  await call(port, 'POST', '/config/validate', 'listen: []\n', auth);
  await call(port, 'POST', '/bans/192.0.2.7?duration=1m', undefined, auth);
  await call(port, 'DELETE', '/bans/192.0.2.7', undefined, auth);
  await call(port, 'POST', '/upstreams/app/servers/0/drain', undefined, auth);
  await call(port, 'POST', '/upstreams/app/servers/0/undrain', undefined, auth);
  await call(port, 'POST', '/cache/purge?all=true', undefined, auth);
  await call(port, 'POST', '/reload', undefined, auth);
  const source = (await call(port, 'GET', '/config', undefined, auth)).body.source as string;
  const applied = await call(port, 'POST', '/config/apply', source.replace('routes:', 'routes:\n  - name: extra\n    match: { path: /extra }\n    upstream: app'), auth);
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  const audits = lines.filter((line) => line.audit === true && line.status !== 401);
  assert.deepEqual(
    audits.map((line) => line.endpoint),
    ['POST /bans/192.0.2.7?duration=1m', 'DELETE /bans/192.0.2.7', 'POST /upstreams/app/servers/0/drain', 'POST /upstreams/app/servers/0/undrain', 'POST /cache/purge?all=true', 'POST /reload', 'POST /config/apply'],
  );
  for (const line of audits) {
    assert.match(String(line.who), /127\.0\.0\.1 \(token\)$/);
    assert.equal(line.msg, 'admin change');
  }
  const apply = audits.at(-1) as { status: number; summary: { version: string; changes: string[] } };
  assert.equal(apply.status, 200);
  // Unnamed routes are named by their place, as reload logs them: the old first route moved.
  assert.deepEqual(apply.summary, { version: applied.body.version, changes: ['route added: extra', 'route added: route-1', 'route removed: route-0'] });
  assert.deepEqual((audits[0] as { summary: { banned: string } }).summary.banned, '192.0.2.7');
});
