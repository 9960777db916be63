/**
 * The HealthProbe contract: every probe type (src/upstream/health/index.ts) passes a server that
 * answers, fails one that refuses connections or does not answer in time, and never rejects.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { HealthCheckConfig } from '../../src/config/schema.ts';
import { DEFAULT_BACKEND_TLS } from '../../src/config/backend-tls-files.ts';
import { PROBES } from '../../src/upstream/health/index.ts';
import type { ProbeTarget } from '../../src/upstream/health/probe.ts';
import { closedPort, startBackend, startRawBackend } from '../helpers/backend.ts';
import { startEchoServer } from '../helpers/grpc.ts';
import { waitFor } from '../helpers/http.ts';
import { once } from 'node:events';
import { createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

/** An HTTP/2-only (h2c) server answering OK; its port. */
async function startH2cBackend(t: TestContext): Promise<number> {
  const server = createH2Server((_req, res) => res.end('OK'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function healthConfig(type: string): HealthCheckConfig {
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    upstreams: { app: { servers: [{ url: 'http://127.0.0.1:1' }], protocol: type === 'grpc' ? 'h2c' : 'http1', health_check: { type: type as 'http' } } },
  });
  return config.upstreams['app']?.health_check as HealthCheckConfig;
}

function target(port: number): ProbeTarget {
  return { hostname: '127.0.0.1', port, authority: `127.0.0.1:${port}`, secure: false };
}

/** Each probe type, and type http over HTTP/2 (for upstreams with protocol h2c). */
const variants = (Object.keys(PROBES) as HealthCheckConfig['type'][]).flatMap((type): { type: HealthCheckConfig['type']; http2: boolean }[] =>
  type === 'http' ? [{ type, http2: false }, { type, http2: true }] : [{ type, http2: false }],
);

for (const { type, http2 } of variants) {
  describe(`health probe contract: ${type}${http2 ? ' over HTTP/2 (h2c)' : ''}`, () => {
    const probe = PROBES[type](healthConfig(type), { tls: DEFAULT_BACKEND_TLS, http2 });

    test('a server that answers passes', async (t) => {
      const port =
        type === 'grpc' ? (await startEchoServer(t)).port : http2 ? await startH2cBackend(t) : (await startBackend(t, (_req, res) => res.end('OK'))).port;
      const outcome = await probe.check(target(port), new AbortController().signal);
      assert.equal(outcome.ok, true, outcome.detail);
    });

    test('a refused connection fails with the reason', async () => {
      const outcome = await probe.check(target(await closedPort()), new AbortController().signal);
      assert.deepEqual(outcome, { ok: false, detail: 'ECONNREFUSED' });
    });

    test('an abort (the timeout) fails the check, without rejecting', async (t) => {
      // Accepts and reads, never answers: only the abort ends an HTTP check. (A TCP check passes
      // on connect, so it is aborted before it could.)
      const silent = await startRawBackend(t, (socket) => socket.resume());
      const controller = new AbortController();
      controller.abort();
      const outcome = await probe.check(target(silent.port), controller.signal);
      assert.deepEqual(outcome, { ok: false, detail: 'timeout' });
      const later = new AbortController();
      const pending = probe.check(target(silent.port), later.signal);
      if (type !== 'tcp') {
        // Aborted once the request is at the server, waiting for an answer that never comes.
        await waitFor(() => silent.sockets.length >= 1, 2000, 'the check to connect');
        later.abort();
        assert.deepEqual(await pending, { ok: false, detail: 'timeout' });
      } else {
        assert.equal((await pending).ok, true);
      }
    });
  });
}
