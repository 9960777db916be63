// Reference for cache hits: a bare node:http server answering the cache path from memory through
// node:http's public API at its cheapest (bodies without a body stream, head and body in one write),
// with no proxying, no cache bookkeeping and no log. It shows how much of a gap to nginx is the
// runtime's. Gatehouse's hits go below this public API (listeners/serialized-head.ts).
// Usage: node bench/peers/node-static.ts --port N
import { createServer } from 'node:http';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs } from '../lib/listen-args.ts';
import { CACHE_BYTES, CACHE_PATH, SMALL_BYTES, SMALL_PATH } from '../lib/payloads.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
// latin1 text, one character per byte: node:http joins a string body to its head in one write.
const bodies = new Map<string, string>([
  [SMALL_PATH, 'x'.repeat(SMALL_BYTES)],
  [CACHE_PATH, 'x'.repeat(CACHE_BYTES)],
]);
const head = ['content-type', 'text/plain', 'cache-control', 'public, max-age=3600'];

const server = createServer({ optimizeEmptyRequests: true }, (req, res) => {
  const body = bodies.get(req.url ?? '');
  if (body === undefined) {
    res.writeHead(404, ['content-length', '0']);
    res.end();
    return;
  }
  res.writeHead(200, [...head, 'content-length', String(body.length)]);
  res.end(body, 'latin1');
});

server.listen(args.port, HOST);
closeOnSignal(server);
