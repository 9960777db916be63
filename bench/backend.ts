// The benchmark backend: one plain node:http process serving fixed bodies.
//   GET /small -> 100 bytes text/plain
//   GET /large -> 1 MiB (preallocated Buffer)
// Usage: node bench/backend.ts --port N
import { createServer } from 'node:http';
import { HOST } from './lib/ports.ts';
import { parseListenArgs } from './lib/listen-args.ts';
import { LARGE_BYTES, LARGE_PATH, SMALL_BYTES, SMALL_PATH } from './lib/payloads.ts';

const { port } = parseListenArgs(process.argv.slice(2));

const small = Buffer.alloc(SMALL_BYTES, 'x');
small.write('gatehouse bench small response\n');
const large = Buffer.alloc(LARGE_BYTES, 'y');

const bodies = new Map<string, Buffer>([
  [SMALL_PATH, small],
  [LARGE_PATH, large],
]);

const server = createServer((req, res) => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? bodies.get(req.url ?? '') : undefined;
  if (body === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
});
// Upstream keep-alive: let proxies hold their pooled connections for long.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(port, HOST);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
  });
}
