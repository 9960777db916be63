// Ceiling reference for cache hits: a bare node:http server answering the small paths from memory,
// with no proxying, no cache bookkeeping and no log. No Node.js cache can serve hits faster than
// this on one core, so it shows how much of a gap to nginx is the runtime's.
// Usage: node bench/peers/node-static.ts --port N
import { createServer } from 'node:http';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs } from '../lib/listen-args.ts';
import { CACHE_BYTES, CACHE_PATH, SMALL_BYTES, SMALL_PATH } from '../lib/payloads.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const bodies = new Map<string, Buffer>([
  [SMALL_PATH, Buffer.alloc(SMALL_BYTES, 'x')],
  [CACHE_PATH, Buffer.alloc(CACHE_BYTES, 'x')],
]);

const server = createServer((req, res) => {
  const body = bodies.get(req.url ?? '');
  if (body === undefined) {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600', 'content-length': body.length });
  res.end(body);
});

server.listen(args.port, HOST);
closeOnSignal(server);
