// Ceiling reference: the thinnest reasonable Node proxy.
// node:http server -> undici Pool.stream() -> straight into the response.
// Usage: node bench/peers/thin-undici.ts --port N --target http://127.0.0.1:M
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const pool = new Pool(target.origin, { connections: 128, pipelining: 1 });

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Copy headers minus hop-by-hop ones (including those named in Connection). */
function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const connection = headers['connection'];
  const named = connection === undefined ? [] : connection.toLowerCase().split(',').map((s) => s.trim());
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

const server = createServer((req, res) => {
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  pool
    .stream(
      { method, path: req.url ?? '/', headers: endToEnd(req.headers), body: hasBody ? req : null },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, endToEnd(headers));
        return res;
      },
    )
    .catch(() => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-length': 0 });
        res.end();
      } else {
        res.destroy();
      }
    });
});

server.listen(args.port, HOST);
closeOnSignal(server, () => pool.close());
