// Peer: fastify + @fastify/http-proxy (undici-based reply-from), logger off.
// Usage: node bench/peers/fastify-proxy.ts --port N --target http://127.0.0.1:M
import Fastify from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';

const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);

const app = Fastify({ logger: false });
await app.register(fastifyHttpProxy, { upstream: target.origin });
await app.listen({ port: args.port, host: HOST });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void app.close());
}
