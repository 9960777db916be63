// Baseline: the thinnest reasonable Node proxy (the guide's "thin proxy ceiling").
// node:http server -> undici Pool.stream() -> straight into the response.
// Usage: node bench/peers/thin-undici.ts --port N --target http://127.0.0.1:M
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { endToEnd } from '../lib/end-to-end.ts';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const pool = new Pool(target.origin, { connections: 128, pipelining: 1 });

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
