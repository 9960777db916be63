/** With `workers: 2`, one /metrics for the whole proxy: the primary merges what each worker counted. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Primary } from '../../src/workers/primary.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { request, waitFor } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { simpleProxyConfig } from '../helpers/proxy.ts';

test('workers: /metrics adds up both workers\' requests; process metrics and reloads once, from the primary', async (t) => {
  const backend = await startBackend(t, echo());
  const base = { ...simpleProxyConfig([backend.url]), admin: { address: '127.0.0.1:0' }, access_log: { enabled: false }, shutdown_timeout: 2000 };
  base.routes = [{ name: 'main', match: {}, upstream: 'app' }];
  const config = configFromObject({ listen: [{ address: '127.0.0.1:0' }], ...base } as ConfigInput);
  const primary = await Primary.start(config, { logger: pino({ level: 'silent' }), workers: 2 });
  t.after(() => primary.stop(1000));
  const url = `http://127.0.0.1:${primary.addresses[0]?.port}`;
  const port = primary.adminAddress?.port ?? 0;
  // Connections of their own, so that the kernel spreads them: until both workers served some.
  let sent = 0;
  await waitFor(async () => {
    for (let i = 0; i < 10; i++) {
      if ((await request(`${url}/`, { headers: { connection: 'close' } })).status === 200) sent++;
    }
    const each = ((await primary.status()) as { workers: { each: { requests: number }[] } }).workers.each;
    return each.length === 2 && each.every((w) => w.requests > 0);
  }, 20_000, 'both workers to serve');
  await primary.reload(config);
  const { status, samples, text } = await scrape(port);
  assert.equal(status, 200);
  assert.equal(valueOf(samples, 'gatehouse_requests_total', { route: 'main', code: '2xx' }), sent, 'one merged series, the sum of both workers');
  assert.equal(valueOf(samples, 'gatehouse_request_duration_seconds_count', { route: 'main' }), sent);
  assert.equal(valueOf(samples, 'gatehouse_upstream_requests_total', { server: `127.0.0.1:${backend.port}`, code: '2xx' }), sent);
  assert.equal(valueOf(samples, 'gatehouse_reloads_total', { result: 'ok' }), 1, 'the primary counts reloads (a worker\'s prepare and commit are not reloads of their own)');
  assert.equal(samples.filter((s) => s.name === 'process_cpu_user_seconds_total').length, 1);
  assert.equal(text.split('\n').filter((l) => l.startsWith('# TYPE gatehouse_requests_total ')).length, 1);
});
