/**
 * `npm start`: two small demo backends on 127.0.0.1:3000 and :3001, and Gatehouse in front of them
 * with examples/quickstart.yaml, so that a newcomer sees it proxy and balance at once.
 *
 * DEMO_PORT, DEMO_ADMIN_PORT and DEMO_BACKEND_PORTS (two, comma-separated) move it elsewhere
 * (8080, 9090 and 3000,3001 are taken): the quickstart is then copied to a temporary file with
 * those ports, which SIGHUP reloads. SIGTERM or SIGINT drain and exit, as `gatehouse run` does;
 * the backends live in this process (no children), so nothing is left behind.
 */
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { runCli } from '../src/cli.ts';

const quickstart = fileURLToPath(new URL('quickstart.yaml', import.meta.url));
const proxyPort = port(process.env['DEMO_PORT'], 8080);
const adminPort = port(process.env['DEMO_ADMIN_PORT'], 9090);
// No fallback per entry: "3000," would otherwise give a backend on a random port that the config calls :0.
const backendPorts = (process.env['DEMO_BACKEND_PORTS'] ?? '3000,3001').split(',').map((p) => port(p, undefined));
if (backendPorts.length !== 2) throw new Error('DEMO_BACKEND_PORTS takes two ports, e.g. 3000,3001');

function port(text: string | undefined, fallback: number | undefined): number {
  if ((text === undefined || text === '') && fallback !== undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`"${text}" is not a port`);
  return value;
}

for (const backendPort of backendPorts) {
  createServer((req, res) => {
    const body = `Hello from demo backend :${backendPort}\n${req.method} ${req.url}\nX-Forwarded-For: ${String(req.headers['x-forwarded-for'])}\n`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', server: 'demo-backend/1.0' });
    res.end(body);
  })
    .listen(backendPort, '127.0.0.1')
    // Not holding the process open: it ends when Gatehouse has stopped.
    .unref();
}

/** quickstart.yaml, or a copy of it with the ports asked for (comments kept). */
function configFile(): string {
  if (proxyPort === 8080 && adminPort === 9090 && backendPorts.join() === '3000,3001') return quickstart;
  const doc = parseDocument(readFileSync(quickstart, 'utf8'));
  doc.setIn(['listen', 0, 'address'], `127.0.0.1:${proxyPort}`);
  doc.setIn(['admin', 'address'], `127.0.0.1:${adminPort}`);
  backendPorts.forEach((p, i) => doc.setIn(['upstreams', 'app', 'servers', i, 'url'], `http://127.0.0.1:${p}`));
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-demo-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'quickstart.yaml');
  writeFileSync(file, doc.toString());
  return file;
}

const proxy = `http://127.0.0.1:${proxyPort}`;
process.stderr.write(
  `Demo backends on 127.0.0.1:${backendPorts[0]} and :${backendPorts[1]}. Try:\n` +
    `  curl ${proxy}/          (balanced 1:2 over the two backends)\n` +
    `  curl ${proxy}/api/hello (prefix stripped: the backend sees /hello)\n` +
    `  curl -i ${proxy}/old    (301 redirect)\n` +
    `  curl http://127.0.0.1:${adminPort}/status    (admin API)\n` +
    `  open http://127.0.0.1:${adminPort}/          (live dashboard)\n` +
    'Ctrl-C stops it.\n\n',
);
/**
 * npm runs the script through `sh -c` and forwards SIGTERM and SIGINT to that shell only; dash
 * and bash wait for their command rather than pass a signal on. Hence `exec` in package.json's
 * start script: the shell becomes this process. Should a wrapper still die and leave this one
 * orphaned (npm killed with SIGKILL, a shell without exec), the new parent is taken as SIGTERM.
 */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 250).unref();

await runCli(['run', configFile()]);
