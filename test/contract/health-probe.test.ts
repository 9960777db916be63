/**
 * The HealthProbe contract: every probe type (src/upstream/health/index.ts) passes a server that
 * answers, fails one that refuses connections or does not answer in time, and never rejects.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import type { HealthCheckConfig } from '../../src/config/schema.ts';
import { DEFAULT_BACKEND_TLS, readBackendTls } from '../../src/config/backend-tls-files.ts';
import { PROBES } from '../../src/upstream/health/index.ts';
import type { HealthProbe, ProbeTarget } from '../../src/upstream/health/probe.ts';
import { closedPort, startBackend, startHttpsBackend, startRawBackend } from '../helpers/backend.ts';
import { createCa, tempDir, type CertPem } from '../helpers/certs.ts';
import { startEchoServer } from '../helpers/grpc.ts';
import { waitFor } from '../helpers/http.ts';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer as createH2Server, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
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

describe('health probe: type http on an h2 upstream (TLS, ALPN)', () => {
  // The request pool offers h2 then http/1.1 (docs/proxying.md): the check goes the same way, so
  // a server without HTTP/2 is not taken down by checks that its requests would pass.
  async function probeFor(t: TestContext): Promise<{ probe: HealthProbe; leaf: CertPem }> {
    const ca = await createCa();
    const leaf = await ca.issue({ names: ['127.0.0.1'] });
    const dir = await tempDir(t);
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, ca.cert);
    const tls = readBackendTls({ ca: caFile, verify: true });
    return { probe: PROBES.http(healthConfig('http'), { tls, http2: true }), leaf };
  }
  const secure = (port: number): ProbeTarget => ({ ...target(port), secure: true });

  test('a server that chooses HTTP/2 is checked over HTTP/2', async (t) => {
    const { probe, leaf } = await probeFor(t);
    const versions: string[] = [];
    const server = createSecureServer({ ...leaf, allowHTTP1: true }, (req, res) => {
      versions.push(req.httpVersion);
      res.end('OK');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const outcome = await probe.check(secure((server.address() as AddressInfo).port), new AbortController().signal);
    assert.deepEqual(outcome, { ok: true, detail: '200' });
    assert.deepEqual(versions, ['2.0']);
  });

  test('a server that chooses HTTP/1.1 by ALPN is checked over HTTP/1.1, and a failing one fails', async (t) => {
    const { probe, leaf } = await probeFor(t);
    let status = 200;
    const backend = await startHttpsBackend(t, { ...leaf, ALPNProtocols: ['http/1.1'] }, (_req, res) => {
      res.statusCode = status;
      res.end('OK');
    });
    assert.deepEqual(await probe.check(secure(backend.port), new AbortController().signal), { ok: true, detail: '200' });
    status = 500;
    assert.deepEqual(await probe.check(secure(backend.port), new AbortController().signal), { ok: false, detail: 'status 500 not expected' });
    assert.deepEqual(
      backend.requests.map((r) => r.httpVersion),
      ['1.1', '1.1'],
    );
  });
});
