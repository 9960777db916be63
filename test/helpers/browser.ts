/**
 * A real headless browser for the dashboard's tests: Debian's chromium driven by playwright-core
 * (installed by .ci/run). One browser per test file, closed when the test ends.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where Debian installs chromium (GATEHOUSE_CHROMIUM overrides). */
export const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export const noBrowser: string | undefined = existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (.ci/run installs it as root)`;

/** Chromium's flags: headless, and the background-networking ones keep it from trying to reach the internet. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * One browser for a test file, started on first use and closed after the file's tests
 * (`after(closeBrowser)` at the top level).
 */
export function sharedBrowser(): { get(): Promise<Browser>; close(): Promise<void> } {
  let browser: Promise<Browser> | undefined;
  return {
    get: () => (browser ??= chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })),
    close: async () => {
      if (browser !== undefined) await (await browser).close();
    },
  };
}

/**
 * A page that records what went wrong in it: script errors, console errors (CSP violations are
 * reported there), and requests that left loopback (the page must work with no internet).
 */
export async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Answers the tests expect (a refused configuration's 422) are logged as failed loads: not problems.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.hostname !== '127.0.0.1') problems.push(`request off the host: ${request.url()}`);
  });
  return { page, problems };
}
