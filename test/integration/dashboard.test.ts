import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalJobsService } from '../../scripts/jobs-service.js';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { clickDelayUntilText, delayUntil, launchBrowser, openPage, screenshot } from '../support/browser.js';
import { Mosquitto } from '../support/mosquitto.js';
import { freePort, waitFor } from '../support/ports.js';
import { PtyPair } from '../support/socat.js';

/**
 * The dashboard in Debian's chromium (playwright-core) against the built agent with real peers:
 * a mosquitto of its own, the local AWS IoT Jobs service, a socat pty as a serial device.
 * Delays from a change to its appearance on the page are printed, not asserted.
 */
const thing = `dash-${process.pid}`;
const delays: Record<string, number> = {};
let broker: Mosquitto;
let service: LocalJobsService;
let pty: PtyPair;
let agent: AgentProcess;
let base: string;
let browser: Browser;
let jobsDir: string;

beforeAll(async () => {
  broker = await Mosquitto.start();
  service = await LocalJobsService.start(broker.url);
  pty = await PtyPair.start('sensor');
  jobsDir = mkdtempSync(join(tmpdir(), 'edgevisor-dash-jobs-'));
  writeFileSync(join(jobsDir, 'slow.sh'), '#!/bin/sh\nsleep "$1"\necho "slept $1"\n');
  chmodSync(join(jobsDir, 'slow.sh'), 0o755);
  const profilesDir = mkdtempSync(join(tmpdir(), 'edgevisor-dash-profiles-'));
  writeFileSync(join(profilesDir, 'line-sensor.json'), JSON.stringify({ protocol: { type: 'lines' } }));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  agent = runAgent({
    config: {
      thingName: thing,
      mqtt: { url: broker.url, reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
      http: { port },
      jobs: { enabled: true, allowlist: [`${jobsDir}/`] },
      devices: { enabled: true, profilesDir, hotplug: 'off', ports: [{ path: pty.near, profile: 'line-sensor', id: 'sensor' }] },
    },
  });
  await waitForHealth(base, 200, 20_000);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  agent?.child.kill('SIGTERM');
  await agent?.exited;
  await pty?.stop();
  await service?.stop();
  await broker?.stop();
  if (Object.keys(delays).length)
    console.log(
      `dashboard: change → on the page (ms): ${Object.entries(delays)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(', ')}`,
    );
});

const view = async (page: Page, name: string) => {
  await page.getByRole('link', { name, exact: true }).click();
  await page.waitForFunction((hash) => (globalThis as any).location.hash === hash, `#${name.toLowerCase()}`);
};

describe('dashboard', () => {
  it('loads with no console error and shows every concern, live', async () => {
    const { page, errors, close } = await openPage(browser);
    await page.goto(base);
    await page.getByTestId('socket').getByText('live').waitFor();
    const state = (await (await fetch(`${base}/api/v1/state`)).json()) as { tree: { state: { running: Record<string, string> } } };
    const concerns = Object.keys(state.tree.state.running);
    expect(concerns).toEqual(expect.arrayContaining(['broker', 'link', 'outbox', 'jobs', 'devices', 'firmware', 'http']));
    for (const name of concerns) await page.locator(`[data-concern="${name}"]`).waitFor();
    // each concern's state as /health names it ("open.delivery.draining,capacity.ok"), on the page with spaces after commas
    const health = (await (await fetch(`${base}/health`)).json()) as { concerns: Record<string, { state: string }> };
    for (const [name, { state: expected }] of Object.entries(health.concerns)) {
      await expect.poll(async () => (await page.locator(`[data-concern="${name}"]`).textContent())?.replace(/\s/g, '')).toContain(expected);
    }
    await expect(page.locator('[data-concern="firmware"]').textContent()).resolves.toContain('disabled');
    await expect(page.getByTestId('phase').textContent()).resolves.toBe('running');
    await screenshot(page, 'overview');
    expect(errors).toEqual([]);
    await close();
  });

  it('shows an outbox pause and a published message as they happen; resumes', async () => {
    const { page, errors, close } = await openPage(browser);
    await page.goto(base);
    await page.getByTestId('outbox-state').getByText('draining').waitFor();
    delays.outboxPause = await clickDelayUntilText(page, page.getByRole('button', { name: 'Pause delivery' }), '[data-testid="outbox-state"]', /paused/);
    const enqueued = Number(await page.getByTestId('outbox-enqueued').textContent());
    delays.publish = await delayUntil(
      page,
      async () => {
        // the 202 comes once the message is synced to disk: how much of the delay that is
        const sent = Date.now();
        await fetch(`${base}/api/v1/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ topic: `devices/${thing}/dash`, payload: 'hello' }),
        });
        delays.publishAccepted = Date.now() - sent;
      },
      (before) =>
        Number((globalThis as any).document.querySelector('[data-testid="outbox-enqueued"]')?.textContent) === before + 1 &&
        (globalThis as any).document.querySelector('[data-testid="outbox-depth"]')?.textContent === '1',
      enqueued,
    );
    await screenshot(page, 'overview-paused');
    await page.getByRole('button', { name: 'Resume delivery' }).click();
    await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-testid="outbox-depth"]')?.textContent === '0');
    expect(errors).toEqual([]);
    await close();
  });

  it("draws a job actor's statechart with running, then succeeded highlighted; the job appears in the history", async () => {
    const { page, errors, close } = await openPage(browser);
    await page.goto(`${base}/#statecharts`);
    await page.getByTestId('statechart').waitFor();
    const jobId = `dash-job-${Date.now()}`;
    const actorKey = `supervisor/jobs/job:${jobId}`;
    delays.jobAppears = await delayUntil(
      page,
      async () =>
        service.createJob(thing, jobId, {
          version: '1.0',
          steps: [{ action: { name: 'nap', type: 'runCommand', input: { command: `${jobsDir}/slow.sh,4` } } }],
        }),
      (key) => Boolean((globalThis as any).document.querySelector(`[data-testid="actor-picker"] option[value="${key}"]`)),
      actorKey,
    );
    await page.getByTestId('actor-picker').selectOption(actorKey);
    await page.locator('[data-testid="statechart"][data-machine="job"] [data-state="running"][data-active="true"]').waitFor();
    await screenshot(page, 'statechart-job-running');
    await page.locator('[data-testid="statechart"][data-machine="job"] [data-state="succeeded"][data-active="true"]').waitFor({ timeout: 20_000 });
    await expect(page.getByTestId('transitions').textContent()).resolves.toMatch(/running/);
    await screenshot(page, 'statechart-job-succeeded');
    await view(page, 'Jobs');
    await page.locator(`[data-job="${jobId}"]`).getByText('SUCCEEDED').waitFor();
    await screenshot(page, 'jobs');
    expect(errors).toEqual([]);
    await close();
  });

  it('streams a serial line from the pty to the chosen device', async () => {
    const { page, errors, close } = await openPage(browser);
    await page.goto(`${base}/#peripherals`);
    await page.locator('[data-device="sensor"]').getByText('streaming').waitFor();
    await page.locator('[data-device="sensor"]').getByRole('button', { name: 'Watch' }).click();
    await page.getByTestId('readings').waitFor();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the subscription is on its way
    const line = `reading-${Date.now()}`;
    delays.serialLine = await delayUntil(
      page,
      () => pty.write(`${line}\n`),
      (text) => (globalThis as any).document.querySelector('[data-testid="readings"]')?.textContent?.includes(text) ?? false,
      line,
    );
    await screenshot(page, 'peripherals');
    expect(errors).toEqual([]);
    await close();
  });

  it('says so when firmware and monitoring are not enabled', async () => {
    const { page, errors, close } = await openPage(browser);
    await page.goto(`${base}/#firmware`);
    await page.getByText('The firmware concern is not enabled').waitFor();
    await screenshot(page, 'firmware');
    await view(page, 'Monitoring');
    await page.getByTestId('monitoring-off').waitFor();
    await screenshot(page, 'monitoring');
    expect(errors).toEqual([]);
    await close();
  });

  it('is usable by keyboard, in dark mode and at 360 px wide', async () => {
    const { page, errors, close } = await openPage(browser, { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
    await page.goto(base);
    await page.locator('[data-concern="outbox"]').waitFor();
    // Tab reaches the views in order; Enter opens one
    const focused: string[] = [];
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent ?? ''));
    }
    expect(focused).toEqual(['Overview', 'Statecharts', 'Jobs']);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (globalThis as any).location.hash === '#jobs');
    const outline = await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.activeElement).outlineStyle);
    expect(outline).toBe('solid');
    for (const name of ['Overview', 'Statecharts', 'Jobs', 'Peripherals', 'Firmware', 'Monitoring']) {
      await view(page, name);
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(
        () => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth,
      );
      expect(overflow, `${name} wider than 360 px`).toBeLessThanOrEqual(0);
      await screenshot(page, `360-dark-${name.toLowerCase()}`);
    }
    // below 600 px the devices table stacks: one block per device, no column wider than the page
    await view(page, 'Peripherals');
    const row = page.locator('[data-device="sensor"]');
    await row.waitFor();
    expect(await row.evaluate((tr) => (globalThis as any).getComputedStyle(tr).display)).toBe('block');
    expect((await row.boundingBox())!.width).toBeLessThanOrEqual(360);
    expect(errors).toEqual([]);
    await close();
  });
});

describe('dashboard with http.token', () => {
  const token = 'dash-token-5f1c0a9e7b3d';
  let secured: AgentProcess;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    secured = runAgent({ config: { thingName: `${thing}-secured`, mqtt: { url: broker.url }, http: { port, token } } });
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => undefined))?.ok || undefined, 'secured agent healthy', 20_000);
  });
  afterAll(async () => {
    secured?.child.kill('SIGTERM');
    await secured?.exited;
  });

  it("refuses the page's calls without the token and accepts them with it; /ws gets a ticket, never the token", async () => {
    const { page, errors, close } = await openPage(browser);
    const api: Array<{ path: string; status: number; authorization?: string }> = [];
    page.on('response', async (res) => {
      const path = new URL(res.url()).pathname;
      if (path.startsWith('/api/')) api.push({ path, status: res.status(), authorization: (await res.request().headerValue('authorization')) ?? undefined });
    });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));

    await page.goto(url);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(api.length).toBeGreaterThan(0);
    expect(api.every((r) => r.status === 401 && !r.authorization)).toBe(true);
    expect(await page.locator('[data-concern]').count()).toBe(0);

    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The token was refused.').waitFor();

    api.length = 0;
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-concern="outbox"]').waitFor();
    await page.getByTestId('socket').getByText('live').waitFor();
    await page.getByRole('button', { name: 'Pause delivery' }).click();
    await page.getByTestId('outbox-state').getByText('paused').waitFor();
    expect(api.length).toBeGreaterThan(0);
    expect(api.filter((r) => r.status !== 401).every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    expect(api.some((r) => r.path === '/api/v1/ws-ticket' && r.status === 200)).toBe(true);
    expect(api.some((r) => r.path === '/api/v1/outbox/pause' && r.status === 202)).toBe(true);
    const opened = sockets.at(-1)!;
    expect(opened).toMatch(/\/ws\?ticket=[A-Za-z0-9_-]{22}$/);
    expect(sockets.every((s) => !s.includes(token))).toBe(true);
    await screenshot(page, 'token-accepted');
    // the only console errors are the browser's own lines for the refused (401) calls
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    await close();
  });
});
