/**
 * A flood client, run as its own process so that generating the load does not slow the proxy's
 * event loop: `node flood.ts <port> <localAddress> <requestsPerSecond> <durationMs> <connections>`.
 * Each connection writes pipelined requests at a fixed pace, whatever the answers; at the end it
 * prints one JSON line: requests sent and answers by status.
 */
import { connect, type Socket } from 'node:net';

const [portArg, localAddress = '127.0.0.2', rateArg = '2000', durationArg = '2000', connectionsArg = '20'] = process.argv.slice(2);
const port = Number(portArg);
const rate = Number(rateArg);
const duration = Number(durationArg);
const connections = Number(connectionsArg);
const REQUEST = Buffer.from('GET /flood HTTP/1.1\r\nHost: x\r\n\r\n');

let sent = 0;
const statuses: Record<string, number> = {};
const sockets: Socket[] = [];
for (let i = 0; i < connections; i++) {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  let tail = '';
  socket.on('data', (chunk: Buffer) => {
    const text = tail + chunk.toString('latin1');
    for (const match of text.matchAll(/HTTP\/1\.1 (\d{3}) /g)) statuses[match[1] as string] = (statuses[match[1] as string] ?? 0) + 1;
    tail = text.slice(-16);
  });
  sockets.push(socket);
}

// Every tick, send what the rate asks for since the start, spread over the connections.
const started = performance.now();
let turn = 0;
const timer = setInterval(() => {
  const elapsed = performance.now() - started;
  const due = Math.min(Math.floor((elapsed / 1000) * rate), Math.floor((duration / 1000) * rate));
  while (sent < due) {
    const socket = sockets[turn++ % sockets.length] as Socket;
    if (!socket.destroyed && socket.writable) socket.write(REQUEST);
    sent++;
  }
  if (elapsed >= duration) {
    clearInterval(timer);
    // Give the last answers a moment to arrive, then report.
    setTimeout(() => {
      process.stdout.write(`${JSON.stringify({ sent, statuses })}\n`);
      for (const socket of sockets) socket.destroy();
    }, 300);
  }
}, 2);
