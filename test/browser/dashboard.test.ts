/**
 * The live dashboard in a real browser (headless chromium): the page loads with no request off the
 * host and no script or CSP error, its graphs move under load, a server's drain button takes the
 * traffic off it, and errors and refused clients show up; with worker threads too.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import { Primary } from '../../src/workers/primary.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { noBrowser, sharedBrowser, watchedPage } from '../helpers/browser.ts';
import { request, waitFor } from '../helpers/http.ts';
import { startLoad } from '../helpers/load.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

const browser = sharedBrowser();
after(() => browser.close());

test('the dashboard shows live traffic, drains a server with its button, and lists errors and refused clients', { skip: noBrowser }, async (t) => {
  const hits = [0, 0];
  const backends = await Promise.all(
    [0, 1].map((i) =>
      startBackend(t, (_req, res) => {
        hits[i]!++;
        res.end(`backend ${i}`);
      }),
    ),
  );
  const proxy = await startProxy(t, {
    admin: { address: '127.0.0.1:0' },
    upstreams: { app: { servers: backends.map((b) => ({ url: b.url })) } },
    routes: [
      { name: 'broken', match: { path: '/boom' }, respond: { status: 503, body: 'down' } },
      { name: 'private', match: { path: '/private' }, access: { deny: ['127.0.0.0/8'] }, upstream: 'app' },
      { name: 'app', match: {}, upstream: 'app' },
    ],
  });
  const admin = `http://127.0.0.1:${proxy.gatehouse.adminAddress?.port}`;
  const { page, problems } = await watchedPage(await browser.get());
  await page.goto(`${admin}/`);
  await page.locator('#live.on').waitFor();
  await page.locator('[data-upstream="app"] tr[data-server="1"]').waitFor();

  // Under load the request rate and its graph move.
  const load = startLoad(`${proxy.url}/`);
  t.after(() => load.stop());
  const before = await page.locator('#spark-rps').getAttribute('points');
  await page.waitForFunction(() => Number(document.getElementById('rps')?.textContent) > 0, null, { timeout: 10_000 });
  await page.waitForFunction((old) => document.getElementById('spark-rps')?.getAttribute('points') !== old, before, { timeout: 10_000 });
  assert.notEqual(await page.locator('#p50').textContent(), '–', 'latency percentiles are shown');

  // Drain server 0 with its button: the page says drained, and its traffic goes to server 1 only.
  const row0 = page.locator('[data-upstream="app"] tr[data-server="0"]');
  await waitFor(() => hits[0]! > 0 && hits[1]! > 0, 10_000, 'both servers taking traffic');
  await row0.locator('button.drain').click();
  await row0.locator('.state', { hasText: 'drained' }).waitFor({ timeout: 10_000 });
  assert.equal(await row0.locator('button.drain').textContent(), 'Undrain');
  const drainedAt = hits[0]!;
  const otherAt = hits[1]!;
  await waitFor(() => hits[1]! >= otherAt + 50, 10_000, 'server 1 taking the traffic');
  assert.equal(hits[0], drainedAt, 'the drained server gets no new requests');
  // Its load falls to zero on the page too.
  await row0.locator('td', { hasText: /^0\/s$/ }).waitFor({ timeout: 10_000 });

  // Undrain puts it back.
  await row0.locator('button.drain').click();
  await row0.locator('.state', { hasText: 'up' }).waitFor({ timeout: 10_000 });
  await waitFor(() => hits[0]! > drainedAt, 10_000, 'server 0 taking traffic again');

  // An error answer and a refused client appear in their tables.
  assert.equal((await request(`${proxy.url}/boom`)).status, 503);
  assert.equal((await request(`${proxy.url}/private`)).status, 403);
  await page.locator('#errors tbody tr', { hasText: '/boom' }).waitFor({ timeout: 10_000 });
  assert.match((await page.locator('#errors tbody tr').first().textContent()) ?? '', /503.*broken/);
  await page.locator('#refused tbody tr', { hasText: '127.0.0.1' }).waitFor({ timeout: 10_000 });
  assert.deepEqual(problems, []);
});

test('with two worker threads the primary serves the dashboard: live traffic from both, drains in both', { skip: noBrowser }, async (t) => {
  const hits = [0, 0];
  const backends = await Promise.all(
    [0, 1].map((i) =>
      startBackend(t, (req, res) => {
        hits[i]!++;
        echo(`b${i}`)(req, res);
      }),
    ),
  );
  const config = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    admin: { address: '127.0.0.1:0' },
    access_log: { enabled: false },
    shutdown_timeout: 1000,
    ...simpleProxyConfig(backends.map((b) => b.url)),
  });
  const primary = await Primary.start(config, { logger: pino({ level: 'silent' }), workers: 2 });
  t.after(() => primary.stop(1000));
  const { page, problems } = await watchedPage(await browser.get());
  await page.goto(`http://127.0.0.1:${primary.adminAddress?.port}/dashboard`);
  await page.locator('#summary', { hasText: '2/2 workers' }).waitFor({ timeout: 10_000 });
  const load = startLoad(`http://127.0.0.1:${primary.addresses[0]?.port}/`, 4);
  t.after(() => load.stop());
  await page.waitForFunction(() => Number(document.getElementById('rps')?.textContent) > 0, null, { timeout: 10_000 });
  const row1 = page.locator('[data-upstream="app"] tr[data-server="1"]');
  await row1.locator('button.drain').click();
  await row1.locator('.state', { hasText: 'drained' }).waitFor({ timeout: 10_000 });
  const drainedAt = hits[1]!;
  const otherAt = hits[0]!;
  await waitFor(() => hits[0]! >= otherAt + 50, 10_000, 'server 0 taking the traffic');
  assert.equal(hits[1], drainedAt, 'no worker sends to the drained server');
  assert.deepEqual(problems, []);
});
