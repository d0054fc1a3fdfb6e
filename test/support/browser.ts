import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { requirePeer } from './peers.js';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';

/** Debian's chromium (apt-get install chromium); playwright-core drives it and downloads nothing. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const artifacts = join(import.meta.dirname, '../../test-artifacts/dashboard');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.EDGEVISOR_CHROMIUM ?? requirePeer('chromium'), args: CHROMIUM_ARGS });
}

/** A page that records every console error and uncaught exception. */
export async function openPage(browser: Browser, options: BrowserContextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return { page, errors, close: () => context.close() };
}

/** A screenshot as a test artefact (test-artifacts/dashboard/<name>.png, git-ignored). */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** Milliseconds from the start of `change` until `probe` (a function run in the page) is true:
 * printed by the tests, never asserted on. Polled on every animation frame. */
export async function delayUntil<A>(page: Page, change: () => Promise<unknown>, probe: (arg: A) => boolean, arg: A, timeoutMs = 15_000): Promise<number> {
  const started = performance.now();
  const seen = page.waitForFunction(probe as (arg: unknown) => boolean, arg, { timeout: timeoutMs, polling: 'raf' });
  await change();
  await seen;
  return performance.now() - started;
}
