/**
 * Bodies stream with backpressure and are never buffered whole. The 1 GiB transfers run through
 * Gatehouse in a child process, so that its memory can be measured apart from the test's own.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, tempFile, waitStarted, type CliProcess } from '../helpers/process.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** Proxy memory may grow by this much while 1 GiB passes through; buffering it would take far more. */
const MAX_RSS_GROWTH = 150 * MiB;
/** One block of generated data, written again and again. */
const BLOCK = Buffer.alloc(256 * 1024, 'gatehouse ');

/** Writes `total` bytes of generated data to `out`, a block at a time, waiting for 'drain' when told to. */
function generate(
  out: ServerResponse | ClientRequest,
  total: number,
  onWrite?: (written: number, blocked: boolean) => void,
): void {
  let written = 0;
  const pump = (): void => {
    while (written < total) {
      const block = total - written >= BLOCK.length ? BLOCK : BLOCK.subarray(0, total - written);
      written += block.length;
      const ok = out.write(block);
      onWrite?.(written, !ok);
      if (!ok) {
        out.once('drain', pump);
        return;
      }
    }
    out.end();
  };
  pump();
}

/** The resident set size of process `pid`, in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.ok(kb !== undefined, `no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** Samples `pid`'s RSS every 50 ms until stopped; stop() returns the peak seen. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

/** `gatehouse run` in a child process, forwarding everything to `backendUrl`; returns its URL, pid and process. */
async function proxyProcess(t: TestContext, backendUrl: string, route: Record<string, unknown> = {}, nodeArgs: readonly string[] = []): Promise<{ url: string; pid: number; proc: CliProcess }> {
  const port = await freePort();
  const config = {
    listen: [{ address: `127.0.0.1:${port}` }],
    access_log: { enabled: false },
    log: { level: 'info' },
    // Past the default 100 MiB, so that the 1 GiB upload is allowed (and counted on its way).
    limits: { max_body_size: '2gb' },
    upstreams: { app: { servers: [{ url: backendUrl }] } },
    routes: [{ match: {}, upstream: 'app', ...route }],
  };
  const proc = spawnCli(t, ['run', '--config', await tempFile('gatehouse.json', JSON.stringify(config))], nodeArgs);
  await waitStarted(proc);
  return { url: `http://127.0.0.1:${port}`, pid: proc.child.pid as number, proc };
}

/** Warms the proxy up (connections, JIT) with a few MiB each way, then returns its RSS as the baseline. */
async function baselineRss(url: string, pid: number): Promise<number> {
  for (let i = 0; i < 3; i++) {
    const res = await request(`${url}/warmup`, { method: 'POST', body: Buffer.alloc(4 * MiB) });
    assert.equal(res.status, 200);
  }
  return rssOf(pid);
}

/** A GET whose body is counted and dropped; rejects unless the body ends complete. */
async function download(url: string, headers: Record<string, string> = {}): Promise<number> {
  const req = httpRequest(url, { agent: false, headers });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  let bytes = 0;
  for await (const chunk of res) bytes += (chunk as Buffer).length;
  assert.ok(res.complete, 'the response ended complete');
  return bytes;
}

test('a 1 GiB download streams through with the proxy memory flat', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    const total = req.url === '/big' ? GiB : 4 * MiB;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      generate(res, total);
    });
  });
  const proxy = await proxyProcess(t, backend.url);
  const baseline = await baselineRss(proxy.url, proxy.pid);
  const sampler = sampleRss(proxy.pid);
  const started = performance.now();
  const bytes = await download(`${proxy.url}/big`);
  const peak = sampler.stop();
  t.diagnostic(`1 GiB down in ${((performance.now() - started) / 1000).toFixed(1)} s; proxy RSS ${(baseline / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB`);
  assert.equal(bytes, GiB);
  assert.ok(peak - baseline < MAX_RSS_GROWTH, `proxy RSS grew by ${((peak - baseline) / MiB).toFixed(0)} MiB`);
});

test('a 512 MiB download compressed on the fly streams through with the proxy under 200 MB RSS', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    const total = req.url === '/big' ? 512 * MiB : 4 * MiB;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
      generate(res, total);
    });
  });
  const proxy = await proxyProcess(t, backend.url, { compress: { enabled: true, encodings: ['gzip'] } });
  const baseline = await baselineRss(proxy.url, proxy.pid);
  const sampler = sampleRss(proxy.pid);
  const started = performance.now();
  const bytes = await download(`${proxy.url}/big`, { 'accept-encoding': 'gzip' });
  const peak = sampler.stop();
  t.diagnostic(`512 MiB gzipped to ${(bytes / MiB).toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s; proxy RSS ${(baseline / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB`);
  assert.ok(bytes > 0 && bytes < 512 * MiB, `${bytes} bytes arrived compressed`);
  assert.ok(peak < 200 * 1000 * 1000, `proxy RSS peaked at ${(peak / MiB).toFixed(0)} MiB`);
});

test('a 1 GiB chunked upload streams through with the proxy memory flat', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.end(String(bytes)));
  });
  const proxy = await proxyProcess(t, backend.url);
  const baseline = await baselineRss(proxy.url, proxy.pid);
  const sampler = sampleRss(proxy.pid);
  const started = performance.now();
  // No Content-Length: chunked, so the body also passes the max_body_size counter.
  const req = httpRequest(`${proxy.url}/big`, { method: 'PUT', agent: false });
  generate(req, GiB);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let answer = '';
  for await (const chunk of res) answer += (chunk as Buffer).toString();
  const peak = sampler.stop();
  t.diagnostic(`1 GiB up in ${((performance.now() - started) / 1000).toFixed(1)} s; proxy RSS ${(baseline / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB`);
  assert.equal(res.statusCode, 200);
  assert.equal(answer, String(GiB), 'the backend received every byte');
  assert.ok(peak - baseline < MAX_RSS_GROWTH, `proxy RSS grew by ${((peak - baseline) / MiB).toFixed(0)} MiB`);
});

test('uploads with a Content-Length count toward the scavenges of body-memory.ts: small ones at once, large ones on their way', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.end(String(bytes)));
  });
  // --trace-gc prints every collection on stdout; those body-memory.ts asks for give V8's reason for gc(): "testing".
  const proxy = await proxyProcess(t, backend.url, {}, ['--trace-gc']);
  const asked = (): number => (proxy.proc.stdout.match(/Scavenge.*testing/g) ?? []).length;
  await baselineRss(proxy.url, proxy.pid);

  // 8 × 8 MiB, each counted once as it is forwarded: 64 MiB, two marks of 32 MiB (one, with slack).
  let before = asked();
  for (let i = 0; i < 8; i++) {
    const res = await request(`${proxy.url}/small`, { method: 'POST', body: Buffer.alloc(8 * MiB) });
    assert.equal(res.body, String(8 * MiB));
  }
  assert.ok(asked() - before >= 1, `${asked() - before} scavenges asked for on 64 MiB of small uploads`);

  // One 128 MiB upload, counted chunk by chunk on its way: four marks (three, with slack), not one at the start.
  before = asked();
  const total = 128 * MiB;
  const req = httpRequest(`${proxy.url}/big`, { method: 'PUT', agent: false, headers: { 'content-length': String(total) } });
  generate(req, total);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let answer = '';
  for await (const chunk of res) answer += (chunk as Buffer).toString();
  assert.equal(answer, String(total), 'the backend received every byte');
  // stdout may lag the proxy a little: wait for the trace lines rather than reading them once.
  await waitFor(() => asked() - before >= 3, 5000, 'three scavenges asked for during a 128 MiB upload');
});

test('a slow reader pauses the backend through backpressure', async (t) => {
  const TOTAL = 256 * MiB;
  const STEP = 4 * MiB;
  const writer = { written: 0, blocked: false, lastWriteAt: 0, finished: false };
  const backend = await startBackend(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    res.on('drain', () => (writer.blocked = false));
    res.on('finish', () => (writer.finished = true));
    generate(res, TOTAL, (written, blocked) => {
      writer.written = written;
      writer.blocked = blocked;
      writer.lastWriteAt = performance.now();
    });
  });
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const req = httpRequest(`${proxy.url}/slow`, { agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  let read = 0;
  let target = 0;
  res.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read >= target) res.pause();
  });
  const ended = once(res, 'end');
  const readUntil = async (bytes: number): Promise<void> => {
    target = bytes;
    res.resume();
    await waitFor(() => read >= bytes, 5000, `the client to read ${bytes} bytes`);
  };
  // Read a little, stop, and let backpressure travel back: client ← proxy ← backend.
  for (let step = 1; step <= 4; step++) {
    await readUntil(step * STEP);
    await waitFor(
      () => writer.blocked && performance.now() - writer.lastWriteAt > 200,
      5000,
      'the backend to be held back while the client does not read',
    );
    const ahead = writer.written - read;
    t.diagnostic(`client read ${(read / MiB).toFixed(1)} MiB, backend wrote ${(writer.written / MiB).toFixed(1)} MiB`);
    assert.ok(writer.written < TOTAL / 2, `the backend wrote ${(writer.written / MiB).toFixed(0)} MiB of ${TOTAL / MiB}`);
    assert.ok(ahead < 64 * MiB, `at most socket and stream buffers in flight, got ${(ahead / MiB).toFixed(0)} MiB`);
  }
  // Then read the rest at full speed: nothing was lost while paused.
  target = Infinity;
  res.resume();
  await ended;
  assert.equal(read, TOTAL);
  assert.ok(res.complete);
  await waitFor(() => writer.finished, 2000, 'the backend to finish');
});
