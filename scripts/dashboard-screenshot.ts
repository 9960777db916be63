/**
 * Makes docs/dashboard.png: starts Gatehouse (from a file) with three servers, a cached route, a TLS listener, an
 * access rule and a rate limit, sends ~15 s of mixed traffic (some of it failing or refused), drains
 * one server, and photographs the dashboard in headless chromium.
 *   npx node scripts/dashboard-screenshot.ts [out.png]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import { loadConfigFile } from '../src/config/load.ts';
import { Gatehouse } from '../src/gatehouse.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/helpers/browser.ts';

const out = process.argv[2] ?? new URL('../docs/dashboard.png', import.meta.url).pathname;
const SECONDS = 15;

async function backend(latencyMs: number, failEvery = 0): Promise<Server> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    const fail = failEvery > 0 && n % failEvery === 0;
    setTimeout(() => {
      res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain', ...(req.url?.startsWith('/static/') ? { 'cache-control': 'max-age=300' } : {}) });
      res.end('hello\n');
    }, latencyMs * (0.5 + Math.random() * Math.random() * 3));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const servers = await Promise.all([backend(4), backend(6), backend(12, 40)]);
const stateDir = await mkdtemp(join(tmpdir(), 'gatehouse-shot-'));
const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
// A file, as in production: the editor shows it as written and applies write it back.
const configFile = join(stateDir, 'gatehouse.yaml');
await writeFile(
  configFile,
  `# Gatehouse: the shop's front door
listen:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    tls: { internal: { names: [shop.example, api.example] } }
admin:
  address: 127.0.0.1:0
access_log: { enabled: false }
state_dir: ${stateDir}
trusted_proxies: [127.0.0.1]

upstreams:
  web:
    balance: least_conn
    servers:
${urls.map((url) => `      - url: ${url}`).join('\n')}
  api:
    servers:
      - url: ${urls[0]}

routes:
  - name: static
    match: { path_prefix: /static/ }
    upstream: web
    cache: { enabled: true }
  - name: admin-area
    match: { path_prefix: /admin }
    access: { deny: [198.51.100.0/24, 203.0.113.0/24] }
    upstream: web
  - name: api
    match: { path_prefix: /api }
    rate_limits:
      - { name: per-client, key: [ip], rate: 5/s, burst: 5 }
    upstream: api
  - name: web
    match: {}
    upstream: web
`,
);
const gatehouse = await Gatehouse.start(await loadConfigFile(configFile), { configFile, logger: pino({ level: 'silent' }) });
const url = `http://127.0.0.1:${gatehouse.addresses[0]?.port}`;
const admin = `http://127.0.0.1:${gatehouse.adminAddress?.port}`;

const agent = new Agent({ connections: 8 });
let running = true;
/** Mostly pages and cached files; now and then the admin area from a denied network, an API burst. */
function pick(): { path: string; from: string } {
  const r = Math.random();
  const from = `203.0.113.${1 + Math.floor(Math.random() * 4)}`;
  if (r < 0.55) return { path: `/page/${Math.floor(Math.random() * 50)}`, from: '192.0.2.10' };
  if (r < 0.85) return { path: `/static/${Math.floor(Math.random() * 30)}.css`, from: '192.0.2.11' };
  if (r < 0.9) return { path: '/admin/login', from: Math.random() < 0.7 ? from : '198.51.100.7' };
  return { path: '/api/items', from: Math.random() < 0.6 ? '192.0.2.77' : '192.0.2.78' };
}
const startedAt = Date.now();
async function loop(): Promise<void> {
  while (running) {
    const { path, from } = pick();
    try {
      const res = await request(`${url}${path}`, { dispatcher: agent, headers: { 'x-forwarded-for': from } });
      await res.body.dump();
    } catch {
      // Counted by Gatehouse; the script only makes traffic.
    }
    // Traffic that rises and falls, so the graphs have a shape.
    const phase = (Date.now() - startedAt) / 1000;
    await sleep(4 + 6 * (1 + Math.sin(phase / 2)));
  }
}
const loops = Array.from({ length: 6 }, loop);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
  await page.goto(`${admin}/`);
  await sleep((SECONDS - 4) * 1000);
  await page.locator('[data-upstream="web"] tr[data-server="1"] button.drain').click();
  await sleep(4000);
  running = false;
  await Promise.all(loops);
  // An edit in progress: a new route, and its diff against the running configuration.
  const editor = page.locator('#config-text');
  await page.waitForFunction(() => (document.getElementById('config-text') as HTMLTextAreaElement).value.includes('routes:'));
  await editor.fill((await editor.inputValue()).replace('  - name: web\n', '  - name: health\n    match: { path: /healthz }\n    respond: { status: 200, body: ok }\n  - name: web\n'));
  await page.locator('#config-diff').click();
  await page.locator('#config-output span').first().waitFor();
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await agent.close();
  await gatehouse.stop(500);
  for (const s of servers) s.close();
  await rm(stateDir, { recursive: true, force: true });
}
