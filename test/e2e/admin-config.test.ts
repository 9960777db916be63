/** The admin API's configuration changes: validate, diff, apply, history, rollback (docs/admin-api.md). */
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { echo, startBackend } from '../helpers/backend.ts';
import { call, startFromFile } from '../helpers/admin.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, tempDir, waitStarted } from '../helpers/process.ts';
import { startProxy } from '../helpers/proxy.ts';

/** A configuration: one listener, the admin API, upstream "app" on `servers`, one route per [name, prefix]. */
function configText(stateDir: string, servers: readonly string[], routes: readonly [string, string][] = [['all', '/']], extra = ''): string {
  return [
    'listen:',
    '  - address: 127.0.0.1:0',
    'admin:',
    '  address: 127.0.0.1:0',
    '  history: 3',
    'access_log: { enabled: false }',
    'shutdown_timeout: 1s',
    `state_dir: ${stateDir}`,
    'upstreams:',
    '  app:',
    '    servers:',
    ...servers.map((url) => `      - url: ${url}`),
    'routes:',
    ...routes.flatMap(([name, prefix]) => [`  - name: ${name}`, `    match: { path_prefix: ${prefix} }`, '    upstream: app']),
    extra,
  ].join('\n');
}

test('GET /config and /status name the running version; validate and diff leave it alone', async (t) => {
  const a = await startBackend(t, echo('a'));
  const { adminPort, stateDir, file } = await startFromFile(t, (dir) => configText(dir, [a.url]));
  const running = await call(adminPort, 'GET', '/config');
  assert.equal(running.status, 200);
  assert.match(running.body.version, /^[0-9a-f]{12}$/);
  assert.equal(running.headers.etag, `"${running.body.version}"`);
  assert.equal(running.body.source, await readFile(file, 'utf8'));
  assert.equal(running.body.config.upstreams.app.servers[0].url, a.url);
  const status = await call(adminPort, 'GET', '/status');
  assert.equal(status.body.config_version, running.body.version);
  assert.match(status.body.version, /^\d+\.\d+\.\d+/);

  const good = configText(stateDir, [a.url], [['all', '/'], ['api', '/api']]);
  assert.deepEqual((await call(adminPort, 'POST', '/config/validate', good)).body, { valid: true });
  const bad = `${good}\nbogus: 1\n`.replace('history: 3', 'history: -1');
  const invalid = await call(adminPort, 'POST', '/config/validate', bad, { 'content-type': 'text/plain' });
  assert.equal(invalid.status, 422);
  assert.equal(invalid.body.valid, false);
  assert.deepEqual(invalid.body.errors.map((e: { path: string }) => e.path), ['admin.history', 'bogus']);
  assert.deepEqual(invalid.body.errors[0], { line: 5, column: 12, path: 'admin.history', message: invalid.body.errors[0].message });
  assert.match(invalid.body.message, new RegExp(`^${file}:5:12 admin.history: `));
  const syntax = await call(adminPort, 'POST', '/config/validate', 'listen: [\n');
  assert.equal(syntax.status, 422);
  assert.equal(syntax.body.errors[0].path, '');
  assert.ok(syntax.body.errors[0].line >= 1);
  // JSON is YAML.
  const asJson = JSON.stringify({ listen: [{ address: '127.0.0.1:0' }], upstreams: { app: { servers: [{ url: a.url }] } }, routes: [{ match: {}, upstream: 'app' }] });
  assert.equal((await call(adminPort, 'POST', '/config/validate', asJson, { 'content-type': 'application/json' })).status, 200);

  const diff = await call(adminPort, 'POST', '/config/diff', good);
  assert.equal(diff.status, 200);
  assert.deepEqual(diff.body.changes, ['route added: api']);
  assert.match(diff.body.unified, /^--- running\n\+\+\+ candidate\n@@ /);
  assert.match(diff.body.unified, /\n\+  - name: api\n/);
  assert.equal((await call(adminPort, 'POST', '/config/diff', bad)).status, 422);
  assert.equal((await call(adminPort, 'GET', '/config')).body.version, running.body.version, 'nothing applied');
  const huge = await call(adminPort, 'POST', '/config/validate', `# ${'x'.repeat(5 * 1024 * 1024)}\n`);
  assert.equal(huge.status, 413);
  assert.deepEqual(huge.body, { error: `the body is over ${4 * 1024 * 1024} bytes` });
  assert.equal((await call(adminPort, 'POST', '/config/apply', '')).status, 400, 'an empty body');
});

test('apply swaps the configuration, writes the file (same mode), keeps history; rollback goes back', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const { adminPort, port, stateDir, file } = await startFromFile(t, (dir) => configText(dir, [a.url]));
  const first = (await call(adminPort, 'GET', '/config')).body.version as string;
  const served = async (): Promise<string> => JSON.parse((await request(`http://127.0.0.1:${port}/x`)).body).name;
  assert.equal(await served(), 'a');

  const toB = configText(stateDir, [b.url]);
  const applied = await call(adminPort, 'POST', '/config/apply', toB, { 'if-match': `"${first}"` });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.equal(applied.body.applied, true);
  assert.notEqual(applied.body.version, first);
  assert.deepEqual(applied.body.changes, [`server added: app ${b.url}`, `server removed: app ${a.url}`]);
  assert.equal(applied.body.persisted, true);
  assert.equal(await served(), 'b');
  assert.equal(await readFile(file, 'utf8'), toB, 'written to the file, so that SIGHUP or a restart keeps it');
  assert.equal((await stat(file)).mode & 0o777, 0o640, 'the file keeps its mode');

  // A stale If-Match: 409, nothing changed.
  const stale = await call(adminPort, 'POST', '/config/apply', configText(stateDir, [a.url]), { 'if-match': first });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.applied, false);
  assert.equal(await served(), 'b');

  // Invalid: 422, nothing changed.
  assert.equal((await call(adminPort, 'POST', '/config/apply', 'listen: []\n')).status, 422);
  assert.equal(await served(), 'b');

  const history = await call(adminPort, 'GET', '/config/history');
  assert.equal(history.body.current, applied.body.version);
  assert.equal(history.body.persisted, true);
  assert.deepEqual(history.body.entries.map((e: { version: string }) => e.version), [applied.body.version, first]);
  assert.match(history.body.entries[0].by, /^127\.0\.0\.1$|^::ffff:127\.0\.0\.1$/);
  assert.equal(history.body.entries[1].by, 'start');
  assert.ok(!Number.isNaN(Date.parse(history.body.entries[0].applied_at)));
  assert.equal(history.body.entries[0].source, undefined, 'texts are fetched one by one');
  const old = await call(adminPort, 'GET', `/config/history/${first}`);
  assert.equal(old.body.source, configText(stateDir, [a.url]));
  assert.equal((await call(adminPort, 'GET', '/config/history/000000000000')).status, 404);

  const rolled = await call(adminPort, 'POST', `/config/rollback/${first}`);
  assert.equal(rolled.status, 200);
  assert.equal(rolled.body.version, first);
  assert.equal(await served(), 'a');
  assert.equal(await readFile(file, 'utf8'), configText(stateDir, [a.url]));
  assert.equal((await call(adminPort, 'POST', '/config/rollback/000000000000')).status, 404);

  // Only `history: 3` entries are kept.
  await call(adminPort, 'POST', '/config/apply', configText(stateDir, [a.url], [['one', '/']]));
  await call(adminPort, 'POST', '/config/apply', configText(stateDir, [a.url], [['two', '/']]));
  const kept = await call(adminPort, 'GET', '/config/history');
  assert.equal(kept.body.entries.length, 3);
});

test('a reload that fails (a listen address in use) changes nothing: 500, the file and the version stay', async (t) => {
  const a = await startBackend(t, echo('a'));
  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const takenPort = (taken.address() as { port: number }).port;
  const { adminPort, stateDir, file } = await startFromFile(t, (dir) => configText(dir, [a.url]));
  const before = await readFile(file, 'utf8');
  const version = (await call(adminPort, 'GET', '/config')).body.version;
  const clash = configText(stateDir, [a.url]).replace('listen:\n  - address: 127.0.0.1:0', `listen:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.1:${takenPort}`);
  const failed = await call(adminPort, 'POST', '/config/apply', clash);
  assert.equal(failed.status, 500, JSON.stringify(failed.body));
  assert.equal(failed.body.applied, false);
  assert.match(failed.body.error, /another process is listening/);
  assert.equal(await readFile(file, 'utf8'), before);
  assert.equal((await call(adminPort, 'GET', '/config')).body.version, version);
  assert.equal((await call(adminPort, 'GET', '/config/history')).body.entries.length, 1);
});

test('a reload from the file is in the history, and the history survives a restart', async (t) => {
  const a = await startBackend(t, echo('a'));
  const first = await startFromFile(t, (dir) => configText(dir, [a.url]));
  const edited = configText(first.stateDir, [a.url], [['edited', '/']]);
  await writeFile(first.file, edited);
  assert.equal((await call(first.adminPort, 'POST', '/reload')).status, 200);
  const history = (await call(first.adminPort, 'GET', '/config/history')).body;
  assert.equal(history.entries.length, 2);
  assert.equal(history.entries[0].by, 'reload');
  assert.deepEqual(history.entries[0].changes, ['route added: edited', 'route removed: all']);
  await first.proxy.stop(100);

  // Started again from the same file: the same history, and the start adds nothing (same text).
  const again = await startFromFile(t, () => '', { dir: first.file.slice(0, -'/gatehouse.yaml'.length) });
  const restarted = (await call(again.adminPort, 'GET', '/config/history')).body;
  assert.deepEqual(restarted.entries.map((e: { version: string }) => e.version), history.entries.map((e: { version: string }) => e.version));
  assert.equal((await call(again.adminPort, 'POST', `/config/rollback/${history.entries[1].version}`)).status, 200);
});

test('with workers: 2, apply and rollback move every worker', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const { adminPort, port, stateDir } = await startFromFile(t, (dir) => configText(dir, [a.url]), { workers: 2 });
  const first = (await call(adminPort, 'GET', '/config')).body.version as string;
  const backends = async (): Promise<Set<string>> => {
    const seen = new Set<string>();
    // New connections each: the kernel spreads them over both workers.
    for (let i = 0; i < 12; i++) seen.add(JSON.parse((await request(`http://127.0.0.1:${port}/x`)).body).name);
    return seen;
  };
  assert.deepEqual(await backends(), new Set(['a']));
  const applied = await call(adminPort, 'POST', '/config/apply', configText(stateDir, [b.url]));
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.deepEqual(await backends(), new Set(['b']));
  assert.equal((await call(adminPort, 'GET', '/status')).body.config_version, applied.body.version);
  assert.equal((await call(adminPort, 'POST', `/config/rollback/${first}`)).status, 200);
  assert.deepEqual(await backends(), new Set(['a']));
});

test('without a configuration file, apply works in memory and says so', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const proxy = await startProxy(t, { admin: { address: '127.0.0.1:0' }, upstreams: { app: { servers: [{ url: a.url }] } }, routes: [{ match: {}, upstream: 'app' }] });
  const adminPort = proxy.gatehouse.adminAddress?.port ?? 0;
  const running = (await call(adminPort, 'GET', '/config')).body;
  assert.match(running.source, /upstreams:/, 'YAML written from the configuration given in code');
  const candidate = running.source.replace(a.url, b.url);
  const applied = await call(adminPort, 'POST', '/config/apply', candidate);
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.equal(applied.body.persisted, false);
  assert.match(applied.body.note, /memory/);
  assert.equal(JSON.parse((await request(`${proxy.url}/`)).body).name, 'b');
  assert.equal((await call(adminPort, 'GET', '/config/history')).body.persisted, false);
});

test('the gatehouse process: an applied configuration survives SIGHUP and a restart', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const dir = await tempDir(t);
  const [port, adminPort] = [await freePort(), await freePort()];
  const text = (url: string): string =>
    configText(join(dir, 'state'), [url]).replace('  - address: 127.0.0.1:0', `  - address: 127.0.0.1:${port}`).replace('  address: 127.0.0.1:0', `  address: 127.0.0.1:${adminPort}`);
  const file = join(dir, 'gatehouse.yaml');
  await writeFile(file, text(a.url));
  const served = async (): Promise<string> => JSON.parse((await request(`http://127.0.0.1:${port}/`)).body).name;
  const first = spawnCli(t, ['run', '--config', file]);
  await waitStarted(first);
  const applied = await call(adminPort, 'POST', '/config/apply', text(b.url));
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.equal(await served(), 'b');
  first.child.kill('SIGHUP');
  await waitFor(() => first.stderr.split('configuration reloaded').length === 3, 5000, 'the SIGHUP reload');
  assert.equal(await served(), 'b', 'SIGHUP reads the applied text');
  assert.equal((await call(adminPort, 'GET', '/config')).body.version, applied.body.version);
  first.child.kill('SIGTERM');
  await first.exited;

  const second = spawnCli(t, ['run', '--config', file]);
  await waitStarted(second);
  assert.equal(await served(), 'b', 'a restart too');
  const history = (await call(adminPort, 'GET', '/config/history')).body;
  assert.equal(history.current, applied.body.version);
  assert.equal(history.entries.length, 2, 'the apply and the first start; the SIGHUP and the restart read the same text');
  assert.match(history.entries[0].by, /127\.0\.0\.1/);
  assert.equal(history.entries[1].by, 'start');
  assert.match(first.stderr, /"audit":true.*"endpoint":"POST \/config\/apply"/);
});

test('a configuration file that is a symbolic link stays one: the file it points to is replaced', async (t) => {
  const a = await startBackend(t, echo('a'));
  const b = await startBackend(t, echo('b'));
  const dir = await tempDir(t);
  const real = join(dir, 'real.yaml');
  await writeFile(real, configText(join(dir, 'state'), [a.url]));
  await symlink(real, join(dir, 'gatehouse.yaml'));
  const { adminPort, file } = await startFromFile(t, () => '', { dir });
  const candidate = configText(join(dir, 'state'), [b.url]);
  assert.equal((await call(adminPort, 'POST', '/config/apply', candidate)).status, 200);
  assert.ok((await lstat(file)).isSymbolicLink());
  assert.equal(await readFile(real, 'utf8'), candidate);
  assert.deepEqual((await readdir(dir)).sort(), ['gatehouse.yaml', 'real.yaml', 'state'], 'no temporary file left');
});
