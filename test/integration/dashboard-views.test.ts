import { crc32 } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent, uniqueThingName, waitForHealth, type AgentProcess } from '../support/agent.js';
import { launchBrowser, openPage, screenshot } from '../support/browser.js';
import { fakeImage, push } from '../support/firmware.js';
import { Mosquitto } from '../support/mosquitto.js';
import { freePort } from '../support/ports.js';
import { DockerRegistry } from '../support/registry.js';

/**
 * The dashboard's firmware and monitoring views in Debian's chromium against the built agent
 * with real peers: docker-registry holding two boards' firmware, a mosquitto of its own, and
 * a peer box publishing its samples to devices/<peer>/monitoring for the agent's collector.
 */
const thing = uniqueThingName('dash-views');
const peer = `peer-${process.pid}`;
const boardA = fakeImage(300_000);
const boardB = fakeImage(40_000);
let broker: Mosquitto;
let registry: DockerRegistry;
let agent: AgentProcess;
let base: string;
let browser: Browser;
let peerClient: MqttClient;
let peerTimer: NodeJS.Timeout | undefined;

const publishPeerSample = (cpu: number) =>
  peerClient.publishAsync(
    `devices/${peer}/monitoring`,
    JSON.stringify({ schema: 1, ts: Date.now(), device: peer, values: { 'cpu-percent': cpu, 'memory-used-percent': 41.5 } }),
    { qos: 1 },
  );

beforeAll(async () => {
  broker = await Mosquitto.start();
  registry = await DockerRegistry.start();
  await push(registry.host, { repo: 'fw/board-a', tag: '1.2.0', bytes: boardA });
  await push(registry.host, { repo: 'fw/board-b', tag: '0.9.1', bytes: boardB });
  peerClient = await mqtt.connectAsync(broker.url, { clientId: `${peer}-sampler` });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  agent = runAgent({
    config: {
      thingName: thing,
      mqtt: { url: broker.url, reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
      http: { port },
      firmware: { enabled: true, freshnessSeconds: 6, registry: { url: registry.host, insecure: true, repositoryPrefix: 'fw/' } },
      monitor: { enabled: true, intervalSeconds: 1, collect: true, alerts: [{ id: 'cpu-busy', metric: 'cpu-percent', op: '>=', threshold: 0, forSeconds: 2 }] },
    },
  });
  await waitForHealth(base, 200, 20_000).catch((error) => {
    throw new Error(`${error}\n${agent.stdout()}\n${agent.stderr()}`);
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  clearInterval(peerTimer);
  await browser?.close();
  await peerClient?.endAsync(true);
  agent?.child.kill('SIGTERM');
  await agent?.exited;
  await registry?.stop();
  await broker?.stop();
});

const request = async (path: string) => {
  const res = await fetch(`${base}${path}`);
  await res.arrayBuffer();
  return res.status;
};
const crcHex = (bytes: Buffer) => crc32(bytes).toString(16).padStart(8, '0');
const row = (page: Page, device: string) => page.locator(`[data-firmware="${device}"]`);
const hits = (page: Page, device: string) => row(page, device).getByTestId('firmware-hits');

describe('dashboard views against real peers', () => {
  it('firmware: each cached device with version, size, CRC-32, fresh/stale and hits, live', async () => {
    // board-a: one miss (fetched from the registry), then requests answered from memory
    for (const path of ['/version', '/version', '/version', '/firmware']) expect(await request(`${path}?device=board-a`)).toBe(200);
    for (const path of ['/firmware', '/version']) expect(await request(`${path}?device=board-b`)).toBe(200);
    // a Range request goes past the fast path to the app: still one hit, not two
    const part = await fetch(`${base}/firmware?device=board-a`, { headers: { range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(boardA.subarray(0, 100));
    expect(await (await fetch(`${base}/api/v1/firmware`)).json()).toEqual({ hits: { 'board-a': 4, 'board-b': 1 } });

    const { page, errors, close } = await openPage(browser);
    await page.goto(`${base}/#firmware`);
    await expect.poll(() => row(page, 'board-a').textContent(), { timeout: 10_000 }).toContain('1.2.0');
    const a = (await row(page, 'board-a').textContent())!;
    expect(a).toContain('293.0 KiB');
    expect(a).toContain(crcHex(boardA));
    expect(a).toContain('fresh');
    await hits(page, 'board-a').getByText('4', { exact: true }).waitFor();
    const b = (await row(page, 'board-b').textContent())!;
    expect(b).toContain('0.9.1');
    expect(b).toContain('39.1 KiB');
    expect(b).toContain(crcHex(boardB));
    await hits(page, 'board-b').getByText('1', { exact: true }).waitFor();

    // more requests show without a reload (the service reports what it served every 2 s)
    for (let i = 0; i < 2; i++) expect(await request('/version?device=board-b')).toBe(200);
    await hits(page, 'board-b').getByText('3', { exact: true }).waitFor({ timeout: 10_000 });
    await screenshot(page, 'firmware-fresh');

    // unasked past firmware.freshnessSeconds (6 s): stale; the next request is served and refreshes it
    await row(page, 'board-a').locator('.badge.stale').waitFor({ timeout: 20_000 });
    await screenshot(page, 'firmware-stale');
    expect(await request('/version?device=board-a')).toBe(200);
    await row(page, 'board-a').locator('.badge.fresh').waitFor({ timeout: 10_000 });
    await hits(page, 'board-a').getByText('5', { exact: true }).waitFor({ timeout: 10_000 });
    expect(errors).toEqual([]);
    await close();
  });

  it('monitoring: fleet online/stale, device and metric pickers, latest, chart with range and zoom, an alert firing with its history', async () => {
    let cpu = 20;
    await publishPeerSample(cpu);
    peerTimer = setInterval(() => void publishPeerSample(++cpu), 1000);
    const { page, errors, close } = await openPage(browser);
    await page.goto(`${base}/#monitoring`);
    const fleetItem = (id: string) => page.locator(`[data-fleet-device="${id}"]`);
    await fleetItem(thing).getByTestId('fleet-status').getByText('online').waitFor();
    await fleetItem(peer).getByTestId('fleet-status').getByText('online').waitFor();

    // the own device first: its latest sample moves live (a /ws sample frame a second)
    await page.getByTestId('latest').getByText(`Latest · ${thing}`).waitFor();
    await page.locator('[data-metric="memory-used-bytes"]').waitFor();
    const at = await page.getByTestId('latest-at').textContent();
    await expect.poll(() => page.getByTestId('latest-at').textContent(), { timeout: 10_000 }).not.toBe(at);
    await expect.poll(() => page.getByTestId('metric-picker').inputValue()).toBe('cpu-percent');
    const keys = await page.getByTestId('metric-picker').locator('option').allTextContents();
    expect(keys).toEqual(expect.arrayContaining(['cpu-percent', 'memory-used-bytes', 'memory-used-percent', 'uptime-seconds']));
    await expect.poll(async () => Number(await page.getByTestId('series').getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.locator('[data-testid="series"] canvas').waitFor();

    // range selector, then drag across the chart to zoom in; double-click goes back
    await page.getByRole('group', { name: 'Range' }).getByRole('button', { name: '1 h' }).click();
    await expect.poll(() => page.getByRole('group', { name: 'Range' }).getByRole('button', { name: '1 h' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('group', { name: 'Range' }).getByRole('button', { name: '15 min' }).click();
    await screenshot(page, 'monitoring');
    const over = await page.locator('[data-testid="series"] .u-over').boundingBox();
    await page.mouse.move(over!.x + over!.width * 0.9, over!.y + over!.height / 2);
    await page.mouse.down();
    await page.mouse.move(over!.x + over!.width * 0.995, over!.y + over!.height / 2, { steps: 5 });
    await page.mouse.up();
    await expect.poll(() => page.getByTestId('series').getAttribute('data-zoomed')).toBe('true');
    await page.getByRole('button', { name: 'Reset zoom' }).waitFor();
    await expect.poll(async () => page.getByTestId('series-info').textContent()).toMatch(/\d+ points, \d+ (ms|s) each \(zoomed in\)/);
    await screenshot(page, 'monitoring-zoomed');
    await page.locator('[data-testid="series"] .u-over').dblclick();
    await expect.poll(() => page.getByTestId('series').getAttribute('data-zoomed')).toBe('false');

    // the alert rule (cpu-percent >= 0, held 2 s) fired on the machine's own samples
    const alert = page.locator(`[data-alert="alert:cpu-busy:${thing}"]`);
    await alert.getByTestId('alert-level').getByText('firing').waitFor();
    const history = (await page.getByTestId('alert-history').textContent())!;
    expect(history).toMatch(/crossed the threshold \(pending\)/);
    expect(history).toMatch(/firing/);

    // the peer, by the device picker: its own values, and its memory metric charted
    await page.getByTestId('device-picker').selectOption(peer);
    await page.getByTestId('latest').getByText(`Latest · ${peer}`).waitFor();
    await expect.poll(() => page.locator('[data-metric="memory-used-percent"]').textContent()).toBe('41.5');
    await expect.poll(async () => page.getByTestId('metric-picker').locator('option').allTextContents()).toEqual(['cpu-percent', 'memory-used-percent']);
    await page.getByTestId('metric-picker').selectOption('memory-used-percent');
    await expect.poll(async () => Number(await page.getByTestId('series').getAttribute('data-points')), { timeout: 10_000 }).toBeGreaterThan(0);
    const before = Number(await page.locator('[data-metric="cpu-percent"]').textContent());
    await expect.poll(async () => Number(await page.locator('[data-metric="cpu-percent"]').textContent()), { timeout: 10_000 }).toBeGreaterThan(before);

    // the peer stops publishing: stale after three of its intervals
    clearInterval(peerTimer);
    await fleetItem(peer).getByTestId('fleet-status').getByText('stale').waitFor({ timeout: 15_000 });
    await fleetItem(thing).getByTestId('fleet-status').getByText('online').waitFor();
    await screenshot(page, 'monitoring-peer-stale');
    expect(errors).toEqual([]);
    await close();
  });

  it('firmware and monitoring fit 360 px in dark mode', async () => {
    const { page, errors, close } = await openPage(browser, { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
    for (const view of ['firmware', 'monitoring']) {
      await page.goto(`${base}/#${view}`);
      await page
        .getByTestId(view === 'firmware' ? 'firmware-hits' : 'series')
        .first()
        .waitFor();
      if (view === 'monitoring') await page.locator('[data-testid="series"] canvas').waitFor();
      const overflow = await page.evaluate(
        () => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth,
      );
      expect(overflow, `${view} wider than 360 px`).toBeLessThanOrEqual(0);
      await screenshot(page, `360-dark-${view}-live`);
    }
    expect(errors).toEqual([]);
    await close();
  });
});
