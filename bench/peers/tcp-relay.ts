// Reference for big bodies (issue 21): not an HTTP proxy but a TCP relay, each client connection
// joined to its own backend connection and bytes copied both ways unread. It is the most any Node
// proxy could do per byte with node:net, and shows where the time goes:
//   --mode pipe           socket.pipe() both ways: a new Buffer for every read, as undici's sockets
//                         (and so Gatehouse's upstream reads) get;
//   --mode static-buffer  backend reads into one reused buffer (net's `onread`), written straight
//                         on to the client; a new buffer only while a write is still queued.
// Usage: node bench/peers/tcp-relay.ts --port N --target http://127.0.0.1:M [--mode pipe|static-buffer]
import { connect, createServer, type Socket } from 'node:net';
import { HOST } from '../lib/ports.ts';
import { parseListenArgs, requireTarget } from '../lib/listen-args.ts';

const modeAt = process.argv.indexOf('--mode');
const mode = modeAt === -1 ? 'pipe' : process.argv.splice(modeAt, 2)[1];
if (mode !== 'pipe' && mode !== 'static-buffer') throw new Error(`invalid --mode ${mode ?? '(missing)'}`);
const args = parseListenArgs(process.argv.slice(2));
const target = requireTarget(args);
const READ_BUFFER_BYTES = 64 * 1024;

function backendFor(client: Socket): Socket {
  const options = { host: target.hostname, port: Number(target.port), noDelay: true };
  if (mode === 'pipe') return connect(options);
  let buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let inFlight = false;
  const backend: Socket = connect({
    ...options,
    onread: {
      // Called before each read: the same buffer unless a queued write still points into it.
      buffer: () => {
        if (inFlight) {
          buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
          inFlight = false;
        }
        return buffer;
      },
      callback: (bytes, chunk) => {
        const flowing = client.write(chunk.subarray(0, bytes));
        inFlight = client.writableLength > 0;
        if (!flowing) client.once('drain', () => backend.resume());
        return flowing;
      },
    },
  });
  return backend;
}

const server = createServer({ noDelay: true }, (client) => {
  const backend = backendFor(client);
  client.pipe(backend);
  if (mode === 'pipe') backend.pipe(client);
  else backend.on('end', () => client.end());
  client.on('error', () => backend.destroy());
  backend.on('error', () => client.destroy());
  client.on('close', () => backend.destroy());
  backend.on('close', () => client.destroy());
});
server.listen(args.port, HOST);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
