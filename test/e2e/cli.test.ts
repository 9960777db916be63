import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { startBackend, echo } from '../helpers/backend.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, tempFile, waitStarted } from '../helpers/process.ts';

function configFor(port: number, backendUrl: string, extra = ''): string {
  return `listen:
  - address: 127.0.0.1:${port}
shutdown_timeout: 5s
upstreams:
  app:
    servers:
      - url: ${backendUrl}
routes:
  - match: { path_prefix: / }
    upstream: app
${extra}`;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('validate accepts a good file and exits 0', async (t) => {
  const file = await tempFile('good.yaml', configFor(8080, 'http://127.0.0.1:3000'));
  const proc = spawnCli(t, ['validate', file]);
  assert.equal(await proc.exited, 0);
  assert.match(proc.stdout, /: ok/);
});

test('validate rejects a bad file with file:line:col and exits 1', async (t) => {
  const file = await tempFile('bad.yaml', 'listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  app:\n    servers:\n      - url: nope\n');
  const proc = spawnCli(t, ['validate', file]);
  assert.equal(await proc.exited, 1);
  assert.match(proc.stderr, new RegExp(`${escape(file)}:6:\\d+ upstreams\\.app\\.servers\\[0\\]\\.url: must be an http:// URL`));
});

test('validate rejects two listeners on the same address with file:line:col and exits 1', async (t) => {
  const file = await tempFile('twice.yaml', configFor(8080, 'http://127.0.0.1:3000').replace('listen:\n', 'listen:\n  - address: 127.0.0.1:8080\n'));
  const proc = spawnCli(t, ['validate', file]);
  assert.equal(await proc.exited, 1);
  assert.match(proc.stderr, new RegExp(`${escape(file)}:3:14 listen\\[1\\]\\.address: 127\\.0\\.0\\.1:8080 is already used by listen\\[0\\]`));
});

test('run on an address already in use prints one friendly line and exits 1', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const file = await tempFile('in-use.yaml', configFor(port, 'http://127.0.0.1:3000'));
  const proc = spawnCli(t, ['run', '--config', file]);
  assert.equal(await proc.exited, 1);
  assert.equal(
    proc.stderr,
    `gatehouse: cannot listen on 127.0.0.1:${port} (listen[0] at ${file}:2:14): another process is listening on 127.0.0.1:${port}; stop it or choose another port\n`,
  );
});

test('run with a bad file exits non-zero without binding its port', async (t) => {
  const port = await freePort();
  const file = await tempFile('bad.yaml', `${configFor(port, 'http://127.0.0.1:3000')}  - match: {}\n`);
  const proc = spawnCli(t, ['run', '--config', file]);
  assert.equal(await proc.exited, 1);
  assert.match(proc.stderr, /routes\[1\]: a route needs exactly one action/);
  const probe = createServer().listen(port, '127.0.0.1');
  await once(probe, 'listening');
  probe.close();
});

test('every command has --help, and a bad flag gets usage and exit 2', async (t) => {
  for (const command of ['run', 'validate', 'proxy']) {
    const proc = spawnCli(t, [command, '--help']);
    assert.equal(await proc.exited, 0, command);
    assert.match(proc.stdout, new RegExp(`Usage: gatehouse ${command}`));
  }
  const bad = spawnCli(t, ['proxy', '--frm', 'x']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr, /Unknown option '--frm'/);
});

test('proxy command forwards without a file', async (t) => {
  const backend = await startBackend(t, echo('cli'));
  const port = await freePort();
  const proc = spawnCli(t, ['proxy', '--from', `127.0.0.1:${port}`, '--to', backend.url]);
  await waitStarted(proc);
  const res = await request(`http://127.0.0.1:${port}/x`);
  assert.equal(JSON.parse(res.body).name, 'cli');
  await waitFor(() => proc.stdout.includes('"path":"/x"'), 5000, 'the access log line');
  const line = JSON.parse(proc.stdout.trim().split('\n')[0] as string);
  assert.equal(line.status, 200);
  assert.equal(line.server, backend.url.slice('http://'.length));
  assert.equal(typeof line.duration_ms, 'number');
});

test('SIGHUP reloads the file; in-flight requests finish on the old config; a bad file is rejected', async (t) => {
  let releaseSlow: () => void = () => {};
  const a = await startBackend(t, (req, res) => {
    if (req.url === '/slow') releaseSlow = () => res.end('a-slow');
    else res.end('a');
  });
  const b = await startBackend(t, (_req, res) => res.end('b'));
  const port = await freePort();
  const file = await tempFile('reload.yaml', configFor(port, a.url));
  const proc = spawnCli(t, ['run', '--config', file]);
  await waitStarted(proc);
  const url = `http://127.0.0.1:${port}`;
  assert.equal((await request(`${url}/`)).body, 'a');

  const slow = request(`${url}/slow`);
  await waitFor(() => a.requests.some((r) => r.url === '/slow'), 5000, 'the slow request to arrive');
  await writeFile(file, configFor(port, b.url));
  proc.child.kill('SIGHUP');
  await waitFor(() => proc.stderr.includes('configuration reloaded'), 5000, 'the reload');
  assert.equal((await request(`${url}/`)).body, 'b', 'new requests use the new config');
  releaseSlow();
  assert.equal((await slow).body, 'a-slow', 'the in-flight request finished on the old config');

  await writeFile(file, 'listen: []\n');
  proc.child.kill('SIGHUP');
  await waitFor(() => proc.stderr.includes('reload rejected'), 5000, 'the rejection');
  assert.match(proc.stderr, /listen: at least one listener is needed/);
  assert.equal((await request(`${url}/`)).body, 'b', 'the running config stays');
});

test('SIGTERM stops accepting, finishes in-flight requests, then exits 0', async (t) => {
  let releaseSlow: () => void = () => {};
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') releaseSlow = () => res.end('done');
    else res.end('fast');
  });
  const port = await freePort();
  const file = await tempFile('drain.yaml', configFor(port, backend.url));
  const proc = spawnCli(t, ['run', '--config', file]);
  await waitStarted(proc);
  const url = `http://127.0.0.1:${port}`;
  const slow = request(`${url}/slow`);
  await waitFor(() => backend.requests.length === 1, 5000, 'the slow request to arrive');
  proc.child.kill('SIGTERM');
  await waitFor(() => proc.stderr.includes('stopping'), 5000, 'the stop');
  await waitFor(
    () => request(`${url}/`).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED'),
    5000,
    'new connections to be refused',
  );
  assert.equal(proc.child.exitCode, null, 'still running while a request is in flight');
  releaseSlow();
  const res = await slow;
  assert.equal(res.status, 200);
  assert.equal(res.body, 'done');
  assert.equal(await proc.exited, 0);
});

test('SIGTERM cuts requests still running at shutdown_timeout', async (t) => {
  const backend = await startBackend(t, () => {});
  const port = await freePort();
  const file = await tempFile('deadline.yaml', configFor(port, backend.url).replace('shutdown_timeout: 5s', 'shutdown_timeout: 300ms'));
  const proc = spawnCli(t, ['run', '--config', file]);
  await waitStarted(proc);
  const hung = request(`http://127.0.0.1:${port}/hang`).then(
    () => 'answered',
    () => 'cut',
  );
  await waitFor(() => backend.requests.length === 1, 5000, 'the request to arrive');
  const started = Date.now();
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0);
  assert.ok(Date.now() - started < 3000, 'exited soon after the deadline');
  assert.equal(await hung, 'cut');
});

test('proxy --health-check PATH takes a failing server out without a file', async (t) => {
  const good = await startBackend(t, (req, res) => res.end(req.url === '/health' ? 'ok' : 'good'));
  const sick = await startBackend(t, (req, res) => {
    res.statusCode = req.url === '/health' ? 503 : 200;
    res.end('sick');
  });
  const port = await freePort();
  const proc = spawnCli(t, ['proxy', '--from', `127.0.0.1:${port}`, '--to', good.url, '--to', sick.url, '--health-check', '/health', '--health-interval', '100ms', '--access-log', 'off']);
  await waitStarted(proc);
  await waitFor(() => proc.stderr.includes('"to":"down"'), 5000, 'the failing server to be taken out');
  for (let i = 0; i < 4; i++) assert.equal((await request(`http://127.0.0.1:${port}/`)).body, 'good');
  const bad = spawnCli(t, ['proxy', '--from', `127.0.0.1:${port}`, '--to', good.url, '--health-interval', '1s']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr, /--health-interval needs --health-check PATH/);
});
