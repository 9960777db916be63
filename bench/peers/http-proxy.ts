// Peer: the classic `http-proxy` package with a keep-alive upstream agent.
// Usage: node bench/peers/http-proxy.ts --port N --target http://127.0.0.1:M
import { Agent, createServer, ServerResponse } from 'node:http';
import httpProxy from 'http-proxy';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';
import { closeOnSignal } from './graceful.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: target.origin, agent, xfwd: false });

proxy.on('error', (_err, _req, res) => {
  if (!(res instanceof ServerResponse)) {
    res.destroy();
  } else if (!res.headersSent) {
    res.writeHead(502, { 'content-length': 0 });
    res.end();
  } else {
    res.destroy();
  }
});

const server = createServer((req, res) => proxy.web(req, res));
server.listen(args.port, HOST);
closeOnSignal(server, async () => agent.destroy());
