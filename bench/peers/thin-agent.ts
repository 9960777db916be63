// Transport reference: the same thin proxy as thin-undici.ts, but with node:http's keep-alive Agent
// instead of an undici Pool, to measure which upstream transport is faster.
// Usage: node bench/peers/thin-agent.ts --port N --target http://127.0.0.1:M
import { Agent, createServer, request } from 'node:http';
import { endToEnd } from '../lib/end-to-end.ts';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });

const server = createServer((req, res) => {
  const upstream = request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent },
    (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, endToEnd(upstreamRes.headers));
      upstreamRes.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-length': 0 });
      res.end();
    } else {
      res.destroy();
    }
  });
  req.pipe(upstream);
});

server.listen(args.port, HOST);
closeOnSignal(server, async () => agent.destroy());
