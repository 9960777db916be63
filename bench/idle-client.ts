// Holds idle TLS connections open for the tls-idle-memory scenario. Opens --connections N TLS
// connections to --url (HTTP/1.1 by ALPN, full handshakes: no session is reused), at most
// --parallel at a time; on each one sends one GET and reads the whole answer, then leaves it idle.
// Prints one JSON line when all are open: {"open":N,"failed":F,"firstError":...}; on SIGTERM
// prints {"open":K,"closedWhileIdle":C} (connections the server closed while they were idle) and exits.
// Usage: node bench/idle-client.ts --url https://127.0.0.1:PORT/small --connections 2000 [--parallel 50]
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { url: { type: 'string' }, connections: { type: 'string' }, parallel: { type: 'string', default: '50' } },
});
if (values.url === undefined) throw new Error('missing --url');
const url = new URL(values.url);
const total = Number(values.connections);
const parallel = Number(values.parallel);
if (!Number.isInteger(total) || total <= 0) throw new Error(`invalid --connections ${values.connections ?? '(missing)'}`);

const HEAD_END = Buffer.from('\r\n\r\n');
const request = `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`;
const idle = new Set<TLSSocket>();
let ready = false;
let closedWhileIdle = 0;

/** Open one connection and read one whole answer (Content-Length framed); resolves once it is idle. */
function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    let received = Buffer.alloc(0);
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(10_000, () => fail(new Error('no answer within 10 s')));
    socket.once('secureConnect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf(HEAD_END);
      if (headEnd < 0) return;
      const head = received.subarray(0, headEnd).toString('latin1');
      if (!/^HTTP\/1\.1 200 /.test(head)) return fail(new Error(`answer: ${head.split('\r\n')[0]}`));
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
      if (received.length - headEnd - HEAD_END.length < length) return;
      settled = true;
      socket.setTimeout(0);
      received = Buffer.alloc(0);
      idle.add(socket);
      resolve();
    });
    socket.once('error', fail);
    socket.once('close', () => {
      if (!settled) return fail(new Error('closed before the answer ended'));
      if (idle.delete(socket) && ready) closedWhileIdle++;
    });
  });
}

async function main(): Promise<void> {
  let next = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      await openOne().catch((error: unknown) => {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, total) }, worker));
  ready = true;
  console.log(JSON.stringify({ open: idle.size, failed, firstError }));
}

process.once('SIGTERM', () => {
  console.log(JSON.stringify({ open: idle.size, closedWhileIdle }));
  for (const socket of idle) socket.destroy();
  process.exit(0);
});

void main();
