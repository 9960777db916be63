// Baseline: the thinnest reasonable Node proxy (the guide's "thin proxy ceiling").
// node:http server -> undici Pool.stream() -> straight into the response.
// Usage: node bench/peers/thin-undici.ts --port N --target http://127.0.0.1:M [--cert FILE --key FILE]
// With --cert and --key it listens over TLS (node:https): the TLS ceiling of a Node proxy.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Pool } from 'undici';
import { endToEnd } from '../lib/end-to-end.ts';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const pool = new Pool(target.origin, { connections: 128, pipelining: 1 });

const handler = (req: IncomingMessage, res: ServerResponse): void => {
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
};

const server =
  args.cert === undefined || args.key === undefined
    ? createServer(handler)
    : createHttpsServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) }, handler);

server.listen(args.port, HOST);
closeOnSignal(server, () => pool.close());
