/**
 * The dashboard's configuration editor in a real browser (headless chromium), against the admin
 * API's configuration endpoints: a change applied from the editor takes effect through the proxy,
 * a bad configuration is refused with its line and message shown, a rollback goes back; with a
 * token, the page asks for it and then goes live.
 */
import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import { startFromFile as startFromConfigFile } from '../helpers/admin.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { noBrowser, sharedBrowser, watchedPage } from '../helpers/browser.ts';
import { request, waitFor } from '../helpers/http.ts';

const browser = sharedBrowser();
after(() => browser.close());

/** Gatehouse running from a configuration file (the editor's changes are written back to it): its proxy and admin URLs. */
async function startFromFile(t: TestContext, text: (stateDir: string) => string): Promise<{ proxy: string; admin: string }> {
  const { port, adminPort } = await startFromConfigFile(t, text);
  return { proxy: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}` };
}

function configText(stateDir: string, backend: string, admin = 'admin:\n  address: 127.0.0.1:0'): string {
  return [
    'listen:',
    '  - address: 127.0.0.1:0',
    admin,
    'access_log: { enabled: false }',
    `state_dir: ${stateDir}`,
    'upstreams:',
    '  app:',
    '    servers:',
    `      - url: ${backend}`,
    'routes:',
    '  - name: app',
    '    match: {}',
    '    upstream: app',
    '',
  ].join('\n');
}

const NEW_ROUTE = ['  - name: hello', '    match: { path: /hello }', '    respond: { status: 200, body: hello from the editor }'].join('\n');

test('the editor validates, diffs and applies a change that takes effect; a bad one is refused with its line shown; rollback goes back', { skip: noBrowser }, async (t) => {
  const backend = await startBackend(t, echo());
  const { proxy, admin } = await startFromFile(t, (dir) => configText(dir, backend.url));
  const { page, problems } = await watchedPage(await browser.get());
  await page.goto(`${admin}/`);
  const editor = page.locator('#config-text');
  await page.waitForFunction(() => (document.getElementById('config-text') as HTMLTextAreaElement).value.includes('routes:'));
  const original = await editor.inputValue();
  const forwarded = await request(`${proxy}/hello`);
  assert.equal(forwarded.status, 200, 'the catch-all route forwards');
  assert.equal(JSON.parse(forwarded.body).name, 'backend');

  // A new route answering by itself, first in the list.
  const changed = original.replace('routes:\n', `routes:\n${NEW_ROUTE}\n`);
  await editor.fill(changed);
  await page.locator('#config-validate').click();
  await page.locator('#config-message.ok', { hasText: 'Valid' }).waitFor();
  await page.locator('#config-diff').click();
  await page.locator('#config-message', { hasText: 'route added: hello' }).waitFor();
  await page.locator('#config-output .add', { hasText: '- name: hello' }).waitFor();
  await page.locator('#config-apply').click();
  await page.locator('#config-message.ok', { hasText: 'Applied version' }).waitFor();
  const hello = await request(`${proxy}/hello`);
  assert.equal(hello.status, 200);
  assert.equal(hello.body, 'hello from the editor');
  await page.locator('#config-history li').nth(1).waitFor();

  // A bad configuration: refused, its line and message listed, nothing changed.
  const lines = changed.split('\n');
  const badLine = lines.findIndex((l) => l.includes('upstream: app')) + 1;
  await editor.fill(changed.replace('    upstream: app', '    upstream: nowhere'));
  await page.locator('#config-apply').click();
  await page.locator('#config-message.bad').waitFor();
  const error = (await page.locator('#config-errors li').first().textContent()) ?? '';
  assert.match(error, new RegExp(`line ${badLine}`));
  assert.match(error, /nowhere/);
  assert.equal((await request(`${proxy}/hello`)).body, 'hello from the editor', 'the running configuration stays');

  // Roll back to the first version (a second click confirms): /hello is forwarded again.
  const rollback = page.locator('#config-history li').last().locator('button.rollback');
  await rollback.click();
  await rollback.click();
  await page.locator('#config-message.ok', { hasText: 'Rolled back' }).waitFor();
  await waitFor(async () => (await request(`${proxy}/hello`)).body !== 'hello from the editor', 5000, 'the rollback');
  assert.equal(await editor.inputValue(), original);
  assert.deepEqual(problems, []);
});

test('with an admin token the page loads, asks for the token, then goes live with it', { skip: noBrowser }, async (t) => {
  const backend = await startBackend(t, echo());
  process.env.GATEHOUSE_DASHBOARD_TEST_TOKEN = 'open-sesame';
  t.after(() => delete process.env.GATEHOUSE_DASHBOARD_TEST_TOKEN);
  const { admin } = await startFromFile(t, (dir) => configText(dir, backend.url, 'admin:\n  address: 127.0.0.1:0\n  token_env: GATEHOUSE_DASHBOARD_TEST_TOKEN'));
  assert.equal((await request(`${admin}/status`)).status, 401);
  const { page, problems } = await watchedPage(await browser.get());
  await page.goto(`${admin}/`);
  await page.locator('#live', { hasText: 'token needed' }).waitFor();
  await page.locator('#token').fill('open-sesame');
  await page.locator('#token-form button').click();
  await page.locator('#live.on').waitFor();
  await page.locator('[data-upstream="app"]').waitFor();
  await page.waitForFunction(() => (document.getElementById('config-text') as HTMLTextAreaElement).value.includes('routes:'));
  // The token can come in the URL fragment too, which the page then drops from the address bar.
  const other = await (await browser.get()).newPage();
  await other.goto(`${admin}/#token=open-sesame`);
  await other.locator('#live.on').waitFor();
  assert.equal(new URL(other.url()).hash, '');
  assert.deepEqual(problems, []);
});
