// The benchmark backend: one plain node:http process serving fixed bodies.
//   GET /small -> 100 bytes text/plain
//   GET /medium -> 10 KiB text/plain
//   GET /large -> 1 MiB (preallocated Buffer)
//   GET /cache/small -> 100 bytes, Cache-Control: public, max-age=3600 (cache-hit scenario)
//   GET /gzip/page -> 16 KiB of text/html, Cache-Control: no-store (gzip scenario)
// Usage: node bench/backend.ts --port N
import { createServer } from 'node:http';
import { HOST } from './lib/ports.ts';
import { parseListenArgs } from './lib/listen-args.ts';
import { CACHE_BYTES, CACHE_PATH, GZIP_BYTES, GZIP_PATH, LARGE_BYTES, LARGE_PATH, MEDIUM_BYTES, MEDIUM_PATH, pageText, SMALL_PATH, smallBody } from './lib/payloads.ts';

const { port } = parseListenArgs(process.argv.slice(2));

const small = smallBody();
const medium = Buffer.alloc(MEDIUM_BYTES, 'm');
const large = Buffer.alloc(LARGE_BYTES, 'y');

const cacheable = Buffer.alloc(CACHE_BYTES, 'c');
cacheable.write('gatehouse bench cacheable response\n');

/** Body and headers per path. */
const answers = new Map<string, { body: Buffer; headers: Record<string, string | number> }>([
  [SMALL_PATH, { body: small, headers: { 'content-type': 'text/plain' } }],
  [MEDIUM_PATH, { body: medium, headers: { 'content-type': 'text/plain' } }],
  [LARGE_PATH, { body: large, headers: { 'content-type': 'text/plain' } }],
  [CACHE_PATH, { body: cacheable, headers: { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600', etag: '"bench-1"' } }],
  [GZIP_PATH, { body: pageText(GZIP_BYTES), headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' } }],
]);
for (const answer of answers.values()) answer.headers['content-length'] = answer.body.length;

const server = createServer((req, res) => {
  const answer = req.method === 'GET' || req.method === 'HEAD' ? answers.get(req.url ?? '') : undefined;
  if (answer === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, answer.headers);
  res.end(req.method === 'HEAD' ? undefined : answer.body);
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
