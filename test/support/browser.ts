import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { requirePeer } from './peers.js';
import { chromium, type Browser, type BrowserContextOptions, type Locator, type Page } from 'playwright-core';

/** Debian's chromium (apt-get install chromium); playwright-core drives it and downloads nothing. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

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

/** Milliseconds from the start of `change` (run here) until `probe` (a function run in the page
 * with `arg`) is true. The page checks on every animation frame and notes the wall-clock time
 * itself, so the driver's round trip back (tens of ms on a busy machine) is not counted.
 * Printed by the tests, never asserted on. */
export async function delayUntil<A>(page: Page, change: () => Promise<unknown>, probe: (arg: A) => boolean, arg: A, timeoutMs = 15_000): Promise<number> {
  const watch = (check: (arg: unknown) => boolean, checkArg: unknown) => {
    const g = globalThis as any;
    const mark: { at?: number } = {};
    g.__edgevisorProbe = mark;
    const tick = () => (check(checkArg) ? (mark.at = Date.now()) : g.requestAnimationFrame(tick));
    g.requestAnimationFrame(tick);
  };
  // a string expression: the probe's own source goes to the page with the loop around it
  await page.evaluate(`(${watch.toString()})(${probe.toString()}, ${JSON.stringify(arg)})`);
  const started = Date.now();
  await change();
  const at = await page.waitForFunction(() => (globalThis as any).__edgevisorProbe.at as number | undefined, undefined, { timeout: timeoutMs });
  return (await at.jsonValue())! - started;
}

/** Milliseconds from a click on `button`, dispatched in the page as a user's click is, until the
 * text of `watch` (a selector) matches `pattern`; measured in the page on every animation frame,
 * so the driver's own round trips (playwright's checks before a click take 70–450 ms on a busy
 * machine) are not counted. Printed by the tests, never asserted on. */
export async function clickDelayUntilText(page: Page, button: Locator, watch: string, pattern: RegExp, timeoutMs = 15_000): Promise<number> {
  await button.waitFor();
  const handle = await button.elementHandle();
  return page.evaluate(
    ([element, selector, source, flags, timeout]) =>
      new Promise<number>((resolve, reject) => {
        const doc = (globalThis as any).document;
        const want = new RegExp(source, flags);
        const started = performance.now();
        const frame = (globalThis as any).requestAnimationFrame as (f: () => void) => void;
        const tick = () => {
          const elapsed = performance.now() - started;
          if (want.test(doc.querySelector(selector)?.textContent ?? '')) resolve(elapsed);
          else if (elapsed > timeout) reject(new Error(`${selector} never matched ${want} within ${timeout} ms`));
          else frame(tick);
        };
        (element as any).click();
        frame(tick);
      }),
    [handle, watch, pattern.source, pattern.flags, timeoutMs] as const,
  );
}
