/**
 * Zero-downtime upgrade (SIGUSR2 / `gatehouse upgrade`) and SIGHUP reload, each under a steady
 * load from several clients: no request may fail, no connection may be refused.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect as http2Connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { createCa, writePair } from '../helpers/certs.ts';
import { admin } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, tempDir, waitStarted, type CliProcess } from '../helpers/process.ts';

interface Ports {
  readonly http: number;
  readonly admin: number;
}

function configFor(ports: Ports, backend: string, extra = ''): string {
  return `listen:
  - address: 127.0.0.1:${ports.http}
    h2c: true
admin:
  address: 127.0.0.1:${ports.admin}
access_log: { enabled: false }
shutdown_timeout: 3s
upstreams:
  app:
    servers:
      - url: ${backend}
routes:
  - match: { path_prefix: / }
    upstream: app
${extra}`;
}

/**
 * Clients sending requests in a loop until stopped: keep-alive GETs, keep-alive POSTs with a body
 * (not idempotent: a client must not resend them), and GETs on a new connection each time (which
 * meet the listening socket's accept queue at every request). Every failure is recorded.
 */
class Load {
  ok = 0;
  readonly failures: string[] = [];
  /** HTTP/2 requests the server did not process (above a GOAWAY's last stream), sent again as RFC 9113 §8.7 allows. */
  retried = 0;
  #running = true;
  readonly #loops: Promise<void>[] = [];
  readonly #agents: Agent[] = [];

  /** `tls`: a TLS listener to send keep-alive GETs to as well (HTTPS over HTTP/1.1), and the CA that signed its certificate. */
  constructor(port: number, clients = { keepAlive: 3, posts: 1, fresh: 2, h2c: 1 }, tls?: { port: number; ca: string }) {
    const url = `http://127.0.0.1:${port}/load`;
    for (let i = 0; i < clients.keepAlive; i++) this.#loops.push(this.#loop(url, 'GET', this.#agent()));
    for (let i = 0; i < clients.posts; i++) this.#loops.push(this.#loop(url, 'POST', this.#agent()));
    for (let i = 0; i < clients.fresh; i++) this.#loops.push(this.#loop(url, 'GET', false));
    for (let i = 0; i < clients.h2c; i++) this.#loops.push(this.#h2Loop(port));
    if (tls !== undefined) {
      const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: tls.ca, servername: 'localhost' });
      this.#agents.push(agent);
      this.#loops.push(this.#loop(`https://127.0.0.1:${tls.port}/load`, 'GET', agent));
    }
  }

  /** One HTTP/2 connection at a time (h2c), a new one after GOAWAY, as HTTP/2 clients do. */
  async #h2Loop(port: number): Promise<void> {
    let session: ClientHttp2Session | undefined;
    let goaway = false;
    while (this.#running) {
      if (session === undefined || goaway || session.closed || session.destroyed) {
        session?.close();
        goaway = false;
        session = http2Connect(`http://127.0.0.1:${port}`);
        session.on('goaway', () => (goaway = true));
        session.on('error', () => {});
      }
      try {
        const body = await h2Get(session, '/load');
        if (body !== 'GET ok') this.failures.push(`h2c: unexpected answer ${body.slice(0, 80)}`);
        else this.ok++;
      } catch (error: unknown) {
        if (unprocessed(error)) this.retried++;
        else this.failures.push(`h2c: ${(error as NodeJS.ErrnoException).code ?? String(error)} ${(error as Error).message}`);
      }
    }
    session?.close();
  }

  #agent(): Agent {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.#agents.push(agent);
    return agent;
  }

  async #loop(url: string, method: string, agent: Agent | false): Promise<void> {
    while (this.#running) {
      try {
        const body = await send(url, method, agent);
        if (body !== `${method} ok`) this.failures.push(`${method}: unexpected answer ${body.slice(0, 80)}`);
        else this.ok++;
      } catch (error: unknown) {
        this.failures.push(`${method} ${agent === false ? 'new connection' : 'keep-alive'}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
  }

  /** Resolves once `count` more requests have been answered. */
  async more(count: number): Promise<void> {
    const target = this.ok + count;
    await waitFor(() => this.ok >= target || this.failures.length > 20, 20_000, `${count} more answered requests`);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    for (const agent of this.#agents) agent.destroy();
  }
}

function send(url: string, method: string, agent: Agent | false): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = { method, agent, headers: method === 'POST' ? { 'content-type': 'text/plain' } : {} };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString() : `status ${res.statusCode}`));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? 'x'.repeat(2000) : undefined);
  });
}

/** A backend answering "METHOD ok" (after reading the body), and WebSockets that echo. */
async function startLoadBackend(t: TestContext): Promise<Backend> {
  const backend = await startBackend(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end(`${req.method} ok`));
  });
  const wss = new WebSocketServer({ server: backend.server });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${data.toString()}`)));
  t.after(() => wss.close());
  return backend;
}

/** The pid `path` names, once it names a pid. */
async function pidIn(path: string): Promise<number> {
  let pid = 0;
  await waitFor(async () => {
    pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    return pid > 0;
  }, 10_000, `a pid in ${path}`);
  return pid;
}

/** Starts `gatehouse run` with a pid file; the process serving at the end (the new one, after an upgrade) is killed when the test ends. */
async function startGatehouse(t: TestContext, text: string, args: string[] = []): Promise<{ proc: CliProcess; file: string; pidFile: string }> {
  const pidFile = await pidFileKilledAtEnd(t);
  const file = join(dirname(pidFile), 'gatehouse.yaml');
  await writeFile(file, text);
  const proc = spawnCli(t, ['run', file, '--pid-file', pidFile, ...args]);
  await waitStarted(proc);
  assert.equal(await pidIn(pidFile), proc.child.pid);
  return { proc, file, pidFile };
}

/**
 * A pid file path in a new folder; whichever process it names when the test ends (the new one,
 * after an upgrade: no test process is its parent) is killed. The hook is registered before the
 * folder's removal (hooks run in order), so that the file is still there.
 */
async function pidFileKilledAtEnd(t: TestContext): Promise<string> {
  let pidFile = '';
  t.after(async () => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) killQuietly(pid);
  });
  pidFile = join(await tempDir(t), 'gatehouse.pid');
  return pidFile;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

async function statusPid(port: number): Promise<number> {
  return ((await admin(port, 'GET', '/status')).body as { pid: number }).pid;
}

test('upgrades under load fail no request: the new process takes the sockets over, the old one drains and exits; twice', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const ports = { http: await freePort(), admin: await freePort() };
  const ca = await createCa();
  const pair = await writePair(await tempDir(t), 'site', await ca.issue({ names: ['localhost'] }));
  const tlsPort = await freePort();
  const tls = `  - address: 127.0.0.1:${tlsPort}\n    tls: { certificates: [{ cert: ${pair.cert}, key: ${pair.key} }] }\n`;
  const { proc, pidFile } = await startGatehouse(t, configFor(ports, backend.url).replace('admin:\n', `${tls}admin:\n`));
  const oldPid = proc.child.pid as number;

  const load = new Load(ports.http, undefined, { port: tlsPort, ca: ca.cert });
  t.after(() => load.stop());
  await load.more(200);
  const upgrade = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await upgrade.exited, 0, upgrade.stderr);
  const newPid = await pidIn(pidFile);
  assert.notEqual(newPid, oldPid);
  assert.equal(upgrade.stdout, `gatehouse upgrade: ${newPid} serves; ${oldPid} drains and exits\n`);
  assert.equal(await proc.exited, 0, 'the old process drained and exited');
  await load.more(200);

  // The new process upgrades in turn (its own start was an upgrade).
  const second = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await second.exited, 0, second.stderr);
  const thirdPid = await pidIn(pidFile);
  assert.ok(thirdPid !== newPid && thirdPid !== oldPid);
  await waitFor(() => proc.stderr.split('"msg":"gatehouse stopped"').length === 3, 20_000, 'the second process to drain and exit');
  await load.more(200);
  await load.stop();
  assert.deepEqual(load.failures, []);

  // Every listener goes on in the new process: admin, HTTP/1.1, h2c, TLS.
  assert.equal(await statusPid(ports.admin), thirdPid);
  assert.equal(await send(`http://127.0.0.1:${ports.http}/`, 'GET', false), 'GET ok');
  assert.equal(await h2cGet(ports.http), 'GET ok');
  assert.equal(await tlsGet(tlsPort, ca.cert), 'GET ok');
  assert.match(proc.stderr, /"msg":"upgrade: the new process serves; this one stops accepting and drains"/);
});

async function h2cGet(port: number): Promise<string> {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await h2Get(session, '/h2c');
  } finally {
    session.close();
  }
}

function h2Get(session: ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let body = '';
    stream.on('data', (c: Buffer) => (body += c.toString()));
    stream.on('end', () => resolve(body));
    stream.on('close', () => {
      if (stream.rstCode !== h2.NGHTTP2_NO_ERROR) reject(Object.assign(new Error(`stream reset ${stream.rstCode}`), { rstCode: stream.rstCode }));
    });
    stream.on('error', (error: Error) => reject(Object.assign(error, { rstCode: stream.rstCode })));
  });
}

/** An HTTP/2 request the server never processed: refused, or not sent because of a GOAWAY (RFC 9113 §8.7). */
function unprocessed(error: unknown): boolean {
  const { code, rstCode } = error as { code?: string; rstCode?: number };
  return rstCode === h2.NGHTTP2_REFUSED_STREAM || code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION';
}

function tlsGet(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/tls', servername: 'localhost', ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a WebSocket opened on the old process stays open until its drain timeout, then closes', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const ports = { http: await freePort(), admin: await freePort() };
  const { proc, pidFile } = await startGatehouse(t, configFor(ports, backend.url));
  const oldPid = proc.child.pid as number;
  const ws = new WebSocket(`ws://127.0.0.1:${ports.http}/chat`);
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(data.toString()));
  await once(ws, 'open');
  let closedAt = 0;
  ws.on('close', () => (closedAt = Date.now()));

  const load = new Load(ports.http, { keepAlive: 2, posts: 1, fresh: 1, h2c: 1 });
  t.after(() => load.stop());
  await load.more(100);
  proc.child.kill('SIGUSR2');
  await waitFor(() => proc.stderr.includes('upgrade: the new process serves'), 20_000, 'the new process to serve');
  const handedOverAt = Date.now();
  const newPid = await pidIn(pidFile);
  assert.notEqual(newPid, oldPid);

  // The old process still carries the WebSocket, both ways.
  ws.send('still there');
  await waitFor(() => messages.includes('echo:still there'), 5000, 'the echo through the old process');
  assert.equal(closedAt, 0);
  await load.more(100);
  assert.equal(await statusPid(ports.admin), newPid);

  // shutdown_timeout is 3s: the WebSocket is closed then, and the old process exits.
  assert.equal(await proc.exited, 0);
  await waitFor(() => closedAt > 0, 5000, 'the WebSocket to close');
  assert.ok(closedAt - handedOverAt >= 2000, `closed ${closedAt - handedOverAt} ms after the hand-over, at the 3 s drain timeout`);
  assert.match(proc.stderr, /shutdown deadline reached/);
  await load.stop();
  assert.deepEqual(load.failures, []);
});

test('a failed upgrade (a bad configuration) leaves the old process serving, and says why', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const ports = { http: await freePort(), admin: await freePort() };
  const { proc, file, pidFile } = await startGatehouse(t, configFor(ports, backend.url));
  const oldPid = proc.child.pid as number;
  const load = new Load(ports.http, { keepAlive: 2, posts: 1, fresh: 1, h2c: 1 });
  t.after(() => load.stop());
  await load.more(100);

  await writeFile(file, `${configFor(ports, backend.url)}  - match: {}\n`);
  const upgrade = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await upgrade.exited, 1);
  assert.equal(upgrade.stderr, `gatehouse upgrade: failed; ${oldPid} goes on serving (its log says why)\n`);
  const failed = proc.stderr.split('\n').find((line) => line.includes('upgrade failed; this process goes on serving'));
  assert.ok(failed !== undefined, proc.stderr);
  assert.match(failed, /routes\[1\]: a route needs exactly one action/);
  assert.equal(await pidIn(pidFile), oldPid);
  await load.more(100);
  assert.equal(await statusPid(ports.admin), oldPid);
  assert.equal(proc.child.exitCode, null);

  // Put right, the next upgrade goes through.
  await writeFile(file, configFor(ports, backend.url));
  const again = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await again.exited, 0, again.stderr);
  assert.equal(await proc.exited, 0);
  await load.more(100);
  await load.stop();
  assert.deepEqual(load.failures, []);
});

test('SIGHUP reloads under load without failing a request', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const ports = { http: await freePort(), admin: await freePort() };
  const { proc, file } = await startGatehouse(t, configFor(ports, backend.url));
  const load = new Load(ports.http);
  t.after(() => load.stop());
  await load.more(100);
  for (let i = 1; i <= 3; i++) {
    // A route more each time: the reload logs it as added.
    await writeFile(file, configFor(ports, backend.url, `  - match: { path_prefix: /reloaded-${i} }\n    respond: { status: 200, body: "${i}" }\n`));
    proc.child.kill('SIGHUP');
    await waitFor(() => proc.stderr.split('configuration reloaded').length > i, 10_000, `reload ${i}`);
    await load.more(100);
  }
  await load.stop();
  assert.deepEqual(load.failures, []);
});

test('with several workers an upgrade is refused, and the running process goes on', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const ports = { http: await freePort(), admin: await freePort() };
  const { proc, pidFile } = await startGatehouse(t, configFor(ports, backend.url), ['--workers', '2']);
  const upgrade = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await upgrade.exited, 1);
  // Told at once through the pid file written again, not by the command's timeout.
  assert.equal(upgrade.stderr, `gatehouse upgrade: failed; ${proc.child.pid} goes on serving (its log says why)\n`);
  assert.match(proc.stderr, /"reason":"not available with several workers \(workers > 1\); restart instead","msg":"upgrade refused; this process goes on serving"/);
  assert.equal(await send(`http://127.0.0.1:${ports.http}/`, 'GET', false), 'GET ok');
  assert.equal(proc.child.exitCode, null);
  // The workers' statuses are merged: the pid is the process's, not a sum.
  assert.equal(await statusPid(ports.admin), proc.child.pid);
});

test('with a disk cache, the new process takes the directory over once the old one lets go, and serves what it cached', { timeout: 60_000 }, async (t) => {
  let fetched = 0;
  const backend = await startBackend(t, (req, res) => {
    req.resume();
    if (req.url !== '/cached') res.end(`${req.method} ok`);
    else {
      res.setHeader('cache-control', 'max-age=300');
      res.end(`cached ${++fetched}`);
    }
  });
  const ports = { http: await freePort(), admin: await freePort() };
  const cacheDir = await tempDir(t);
  const cache = `cache:\n  stores:\n    disk: { type: disk, path: ${cacheDir}, max_size: 10mb }\n`;
  const { proc, pidFile } = await startGatehouse(t, `${configFor(ports, backend.url).replace('    upstream: app\n', '    upstream: app\n    cache: { store: disk }\n')}${cache}`);
  const cached = `http://127.0.0.1:${ports.http}/cached`;
  assert.equal(await send(cached, 'GET', false), 'cached 1');
  await waitFor(async () => (await send(cached, 'GET', false)) === 'cached 1' && fetched === 1, 5000, 'a hit');
  const load = new Load(ports.http, { keepAlive: 2, posts: 1, fresh: 1, h2c: 0 });
  t.after(() => load.stop());
  await load.more(100);

  const upgrade = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await upgrade.exited, 0, upgrade.stderr);
  assert.equal(await proc.exited, 0);
  // The new process's store has loaded the directory: the entry the old one stored is a hit.
  const diskEntries = async (): Promise<number> => ((await admin(ports.admin, 'GET', '/cache')).body as { stores: { disk: { entries: number } } }).stores.disk.entries;
  await waitFor(async () => (await diskEntries()) === 1, 10_000, 'the new process to load the cache directory');
  assert.equal(await send(cached, 'GET', false), 'cached 1');
  assert.equal(fetched, 1);
  assert.equal(await readFile(join(cacheDir, 'lock'), 'utf8'), String(await pidIn(pidFile)), 'the lock is the new process\'s');
  await load.more(100);
  await load.stop();
  assert.deepEqual(load.failures, []);
});

test('gatehouse upgrade: usage errors exit 2, a pid that is not running exits 1', async (t) => {
  const cases: [string[], number, RegExp][] = [
    [['upgrade'], 2, /^gatehouse upgrade: give one of --pid-file FILE or --pid PID\n/],
    [['upgrade', '--pid', 'x'], 2, /^gatehouse upgrade: --pid takes a process id\n/],
    [['upgrade', '--pid-file', '/nonexistent/gatehouse.pid', '--timeout', 'soon'], 2, /^gatehouse upgrade: --timeout takes a duration such as 60s\n/],
    [['upgrade', '--pid-file', '/nonexistent/gatehouse.pid'], 1, /^gatehouse upgrade: no pid in \/nonexistent\/gatehouse\.pid; is Gatehouse running with --pid-file/],
  ];
  for (const [args, code, stderr] of cases) {
    const proc = spawnCli(t, args);
    assert.equal(await proc.exited, code, args.join(' '));
    assert.match(proc.stderr, stderr);
  }
  // A pid no process has (pid_max is at most 2^22).
  const gone = spawnCli(t, ['upgrade', '--pid', '4999999']);
  assert.equal(await gone.exited, 1);
  assert.equal(gone.stderr, 'gatehouse upgrade: cannot signal 4999999: no such process\n');
});

test('gatehouse proxy (no file) upgrades too: the new process runs the same command line', { timeout: 60_000 }, async (t) => {
  const backend = await startLoadBackend(t);
  const port = await freePort();
  const pidFile = await pidFileKilledAtEnd(t);
  const proc = spawnCli(t, ['proxy', '--from', `127.0.0.1:${port}`, '--to', backend.url, '--access-log', 'off', '--pid-file', pidFile]);
  await waitStarted(proc);
  const load = new Load(port, { keepAlive: 2, posts: 1, fresh: 1, h2c: 0 });
  t.after(() => load.stop());
  await load.more(100);
  const upgrade = spawnCli(t, ['upgrade', '--pid-file', pidFile]);
  assert.equal(await upgrade.exited, 0, upgrade.stderr);
  assert.notEqual(await pidIn(pidFile), proc.child.pid);
  assert.equal(await proc.exited, 0);
  await load.more(100);
  await load.stop();
  assert.deepEqual(load.failures, []);
});
