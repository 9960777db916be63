/**
 * Under a flood from one address (2,000 requests/s for 2 s, from another process), a well-behaved
 * client on another address keeps its latency (median within 2× of idle), and the backend sees no
 * more of the flood than the configured rate allows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.ts';
import { Connection } from '../helpers/clients.ts';
import { waitFor } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

const FLOOD = fileURLToPath(new URL('../helpers/flood.ts', import.meta.url));
const RATE = 50;
const BURST = 10;

test('a flood from one client neither slows another client nor reaches the backend past the limit', async (t) => {
  const seen = new Map<string, number>();
  const backend = await startBackend(t, (req, res) => {
    const client = String(req.headers['x-forwarded-for']);
    seen.set(client, (seen.get(client) ?? 0) + 1);
    res.end('ok');
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: backend.url }] } },
    routes: [{ match: {}, upstream: 'app', rate_limits: [{ rate: `${RATE}/s`, burst: BURST }] }],
  });
  const good = await Connection.open(t, proxy.port, '127.0.0.3');
  /** Median latency of `n` requests paced under the limit (one every 30 ms). */
  const latency = async (n: number): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      assert.equal((await good.get('/good')).status, 200);
      times.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    return times.sort((a, b) => a - b)[Math.floor(n / 2)] as number;
  };
  await latency(10);
  const idle = await latency(25);

  const floodStarted = performance.now();
  const flood = spawn(process.execPath, [FLOOD, String(proxy.port), '127.0.0.2', '2000', '2000', '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => flood.kill('SIGKILL'));
  let output = '';
  flood.stdout.on('data', (c: Buffer) => (output += c.toString()));
  // Measure once the flood is under way (it has used up its burst at the backend).
  await waitFor(() => (seen.get('127.0.0.2') ?? 0) > BURST, 3000, 'the flood to start');
  const underFlood = await latency(25);
  await once(flood, 'exit');
  const floodMs = performance.now() - floodStarted;
  const report = JSON.parse(output) as { sent: number; statuses: Record<string, number> };

  t.diagnostic(`idle median ${idle.toFixed(2)} ms, under flood ${underFlood.toFixed(2)} ms; flood ${JSON.stringify(report)}`);
  assert.ok(report.sent >= 3900, `the flood sent ${report.sent} requests`);
  assert.ok((report.statuses['429'] ?? 0) >= 3000, 'and most were refused');
  // 1 ms of slack covers timer granularity when idle latency is a fraction of a millisecond.
  assert.ok(underFlood <= 2 * idle + 1, `median latency ${underFlood.toFixed(2)} ms under flood vs ${idle.toFixed(2)} ms idle`);
  const floodAtBackend = seen.get('127.0.0.2') ?? 0;
  const allowed = (RATE * floodMs) / 1000 + BURST + 1;
  assert.ok(floodAtBackend <= allowed, `the backend saw ${floodAtBackend} flood requests (at most ${allowed.toFixed(0)} allowed)`);
  assert.ok(floodAtBackend >= RATE, 'and the flood got its fair share');
  assert.equal(seen.get('127.0.0.3'), 60);
});
