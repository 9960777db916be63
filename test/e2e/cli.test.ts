import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startBackend, echo } from '../helpers/backend.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, tempDir, tempFile, waitStarted } from '../helpers/process.ts';

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
  assert.match(proc.stderr, new RegExp(`${escape(file)}:6:\\d+ upstreams\\.app\\.servers\\[0\\]\\.url: must be an http:// or https:// URL`));
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

test('run FILE, gatehouse --config FILE and validate --config FILE name the file either way', async (t) => {
  const backend = await startBackend(t, echo('either'));
  for (const form of ['run FILE', '--config FILE', '-c FILE', '--config=FILE']) {
    const port = await freePort();
    const file = await tempFile('either.yaml', configFor(port, backend.url));
    const proc = spawnCli(t, form.replace('FILE', file).split(' '));
    await waitStarted(proc);
    assert.equal(JSON.parse((await request(`http://127.0.0.1:${port}/`)).body).name, 'either', form);
    // The operational log's time is ISO 8601 with milliseconds.
    const started = JSON.parse(proc.stderr.split('\n').find((l) => l.includes('gatehouse started')) as string);
    assert.match(started.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0, form);
  }
  const file = await tempFile('good.yaml', configFor(8080, backend.url));
  const validate = spawnCli(t, ['validate', '--config', file]);
  assert.equal(await validate.exited, 0);
  assert.equal(validate.stdout, `${file}: ok\n`);
  const twice = spawnCli(t, ['validate', file, '--config', file]);
  assert.equal(await twice.exited, 2);
  assert.match(twice.stderr, /give the file once/);
});

test('--version and -v print the version from package.json', async (t) => {
  const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const proc = spawnCli(t, [flag]);
    assert.equal(await proc.exited, 0, flag);
    assert.equal(proc.stdout, `gatehouse ${version}\n`);
  }
});

test('an unknown command, option or flag: one line and where the usage is, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['serve'], /^gatehouse: unknown command "serve"\nRun "gatehouse --help" for usage\.\n$/],
    [['--port', '80'], /^gatehouse: unknown option "--port"\nRun "gatehouse --help" for usage\.\n$/],
    [['run', '--frm', 'x'], /^gatehouse run: Unknown option '--frm'\nRun "gatehouse run --help" for usage\.\n$/],
    [['run'], /^gatehouse run: FILE is required\nRun "gatehouse run --help" for usage\.\n$/],
  ];
  for (const [args, expected] of cases) {
    const proc = spawnCli(t, args);
    assert.equal(await proc.exited, 2, args.join(' '));
    assert.match(proc.stderr, expected);
  }
});

test('--workers takes what workers: in the file takes: 1 to 256 or auto', async (t) => {
  const usage = /^gatehouse (run|proxy): --workers takes a number from 1 to 256 or auto\nRun "gatehouse \1 --help" for usage\.\n$/;
  for (const count of ['0', '257', '1.5', 'abc']) {
    const proc = spawnCli(t, ['run', 'missing.yaml', '--workers', count]);
    assert.equal(await proc.exited, 2, `--workers "${count}"`);
    assert.match(proc.stderr, usage);
  }
  const proxy = spawnCli(t, ['proxy', '--from', '127.0.0.1:1', '--to', 'http://127.0.0.1:2', '--workers', '300']);
  assert.equal(await proxy.exited, 2);
  assert.match(proxy.stderr, usage);
  // Accepted counts get as far as reading the file (which is missing: exit 1, not a usage error).
  const dir = await tempDir(t);
  for (const count of ['256', 'auto']) {
    const proc = spawnCli(t, ['run', join(dir, 'missing.yaml'), '--workers', count]);
    assert.equal(await proc.exited, 1, `--workers ${count}`);
    assert.doesNotMatch(proc.stderr, /--workers/);
  }
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

/** Runs `command args` to its end, with its output. */
async function runToEnd(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

const BIN = fileURLToPath(new URL('../../bin/gatehouse.js', import.meta.url));
/** An older Node to start bin/gatehouse.js with: the system's, when it is older than 24. */
const OLD_NODE = '/usr/bin/node';
const oldNode = existsSync(OLD_NODE) ? execFileSync(OLD_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim() : '';
const skipOld = oldNode === '' || Number(oldNode.split('.')[0]) >= 24 ? `no Node older than 24 at ${OLD_NODE}` : false;

test('bin/gatehouse.js started by an older Node runs again with the bundled Node 24', { skip: skipOld }, async () => {
  const result = await runToEnd(OLD_NODE, [BIN, '--version']);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /^gatehouse \d+\.\d+\.\d+\n$/);
  assert.equal(result.code, 0);
  const bad = await runToEnd(OLD_NODE, [BIN, 'nonsense']);
  assert.equal(bad.code, 2, 'the exit code comes through');
});

test('bin/gatehouse.js started by an older Node with no Node 24 at hand says so in one line, exit 1', { skip: skipOld }, async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'bin'));
  await copyFile(BIN, join(dir, 'bin', 'gatehouse.js'));
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  const result = await runToEnd(OLD_NODE, [join(dir, 'bin', 'gatehouse.js'), '--version']);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    `gatehouse needs Node.js 24 or newer (this is v${oldNode}); install it from https://nodejs.org or run \`npx -p node@24 gatehouse ...\`\n`,
  );
});

/** True once nothing accepts connections on the loopback `port`. */
function refused(port: number): Promise<boolean> {
  return request(`http://127.0.0.1:${port}/`).then(
    () => false,
    (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
  );
}

/** True while a process of the group `pgid` is alive; zombies (not reaped yet) have let go of their sockets and do not count. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  try {
    const states = execFileSync('ps', ['-o', 'stat=', '-g', String(pgid)], { encoding: 'utf8' });
    return states.split('\n').some((stat) => stat.trim() !== '' && !stat.trim().startsWith('Z'));
  } catch {
    return false; // ps exits 1 when the group is empty
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm start: ${signal} to npm stops the demo, and nothing is left listening`, async (t) => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()] as [number, number, number, number];
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const env = { ...process.env, DEMO_PORT: String(ports[0]), DEMO_ADMIN_PORT: String(ports[1]), DEMO_BACKEND_PORTS: `${ports[2]},${ports[3]}` };
    // A process group of its own: npm, the shell it runs the script with, and the demo.
    const npm = spawn('npm', ['start'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pgid = npm.pid as number;
    t.after(() => {
      if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    });
    let stderr = '';
    npm.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    npm.stdout.resume();
    const exited = once(npm, 'exit');
    await waitFor(() => stderr.includes('gatehouse started') || npm.exitCode !== null, 15_000, 'the demo to start');
    assert.match((await request(`http://127.0.0.1:${ports[0]}/api/hello`)).body, /^Hello from demo backend :\d+\nGET \/hello\n/);
    npm.kill(signal);
    await exited;
    await waitFor(async () => (await Promise.all(ports.map(refused))).every(Boolean), 10_000, 'every demo port to close');
    await waitFor(() => !groupAlive(pgid), 10_000, 'every process of the group to exit');
    assert.match(stderr, /"msg":"gatehouse stopped"/);
  });
}

