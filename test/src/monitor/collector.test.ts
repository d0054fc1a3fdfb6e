import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, createActor, setup } from 'xstate';
import type { CollectorEvent } from '../../../machines/monitor.js';
import { collectorActor } from '../../../src/actors/monitor/collector.js';
import { Closing } from '../../../src/closing.js';
import { History } from '../../../src/monitor/history.js';
import { HistoryWriter } from '../../../src/monitor/history-writer.js';
import { MonitorHub } from '../../../src/monitor/hub.js';
import { emptyMonitorStats } from '../../../src/monitor/stats.js';
import { Slot } from '../../../src/slot.js';
import { Mosquitto } from '../../support/mosquitto.js';
import { waitFor } from '../../support/ports.js';
import { canMount, mountTmpfs } from '../../support/tmpfs.js';

const limits = { retentionMs: 86_400_000, maxBytes: 1 << 30, maxDevices: 100, maxKeysPerDevice: 100 };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The collector actor under a parent that keeps its last status. */
function runCollector(url: string, writer: Slot<HistoryWriter>, stats = emptyMonitorStats(), connections = 1, stateDir = tempDir()) {
  const closing = new Closing();
  const logic = collectorActor({
    enabled: true,
    url,
    options: { reconnectPeriod: 200 },
    shape: { baseId: 'collector-test', topicPrefix: 'devices', connections, shared: true },
    thingName: 'collector-test',
    sessionRecord: join(stateDir, 'collector-sessions.json'),
    writer,
    hub: new MonitorHub(),
    stats,
    closing,
    now: Date.now,
    log: pino({ level: 'silent' }),
  });
  const parent = setup({ types: {} as { context: { state: string }; events: CollectorEvent }, actors: { collector: logic } }).createMachine({
    context: { state: 'off' },
    invoke: { src: 'collector' },
    on: { 'collector.status': { actions: assign({ state: ({ event }) => event.state }) } },
  });
  const actor = createActor(parent).start();
  const stop = async () => (actor.stop(), await closing.settled());
  cleanups.push(stop);
  return { actor, stats, stop };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-collector-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A history on disk with its writer thread and a reader, closed after the test. */
async function openHistory(dir = tempDir()) {
  const file = join(dir, 'monitor.db');
  const writer = new Slot<HistoryWriter>();
  writer.set(await HistoryWriter.start(file, limits));
  cleanups.push(() => writer.current?.close());
  const reader = History.openReader(file, limits);
  cleanups.push(() => reader.close());
  /** samples of `devices` stored, counted on metric-0 */
  const stored = (devices: string[]) => devices.reduce((n, d) => n + reader.series(d, 'metric-0', 0, 9e12, 100_000).reduce((c, p) => c + p.count, 0), 0);
  return { writer, reader, stored };
}

/** Publishes `count` samples at QoS 1 spread over `devices` devices, each with its own timestamp. */
async function publishSamples(url: string, count: number, devices: number, firstTs: number) {
  const publisher = await mqtt.connectAsync(url, { clientId: `publisher-${firstTs}` });
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      publisher.publishAsync(`devices/dev-${i % devices}/monitoring`, JSON.stringify({ schema: 1, ts: firstTs + i * 1000, values: { 'metric-0': i } }), {
        qos: 1,
      }),
    ),
  );
  await publisher.endAsync();
}

const deviceIds = (n: number) => Array.from({ length: n }, (_, i) => `dev-${i}`);

describe('collector connections sharing one subscription group (real mosquitto)', () => {
  it('stores each sample once over 3 connections: the broker spreads them, it does not copy them', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { writer, stored } = await openHistory();
    const { actor, stats } = runCollector(broker.url, writer, emptyMonitorStats(), 3);
    await waitFor(() => actor.getSnapshot().context.state === 'subscribed', 'collector subscribed');
    await publishSamples(broker.url, 300, 30, 1_000_000);
    await waitFor(() => stored(deviceIds(30)) === 300 || undefined, 'all 300 samples stored');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stats.collectorMessages).toBe(300); // three plain subscriptions would have taken 900
    expect(stored(deviceIds(30))).toBe(300);
  });

  it('changing the number of connections drains the sessions no longer used: samples queued for them while stopped are stored, none twice', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const stateDir = tempDir();
    const { writer, stored } = await openHistory(stateDir);
    const record = () => JSON.parse(readFileSync(join(stateDir, 'collector-sessions.json'), 'utf8')).connections.map((c: { clientId: string }) => c.clientId);
    let ts = 1_000_000;
    let total = 0;
    for (const connections of [1, 3, 1]) {
      const stats = emptyMonitorStats();
      const run = runCollector(broker.url, writer, stats, connections, stateDir);
      await waitFor(() => run.actor.getSnapshot().context.state === 'subscribed', `collector with ${connections} subscribed`);
      await waitFor(() => record().length === connections || undefined, `the record names only the ${connections} connection(s) in use`);
      await waitFor(() => stored(deviceIds(5)) === total || undefined, 'what was queued while stopped is stored');
      await publishSamples(broker.url, 50, 5, ts);
      total += 50;
      ts += 50_000;
      await waitFor(() => stored(deviceIds(5)) === total || undefined, `${total} samples stored`);
      await run.stop();
      await publishSamples(broker.url, 20, 5, ts); // queued on the stopped collector's sessions
      total += 20;
      ts += 20_000;
    }
    const { actor, stats } = runCollector(broker.url, writer, emptyMonitorStats(), 1, stateDir);
    await waitFor(() => actor.getSnapshot().context.state === 'subscribed', 'collector subscribed again');
    await waitFor(() => stored(deviceIds(5)) === total || undefined, `all ${total} samples stored`);
    expect(stats.collectorMessages).toBe(20);
    expect(record()).toEqual(['collector-test-collector']);
  });
});

/** Fills the file system of `dir` to the last byte with one file; returns how to free it again. */
function fill(dir: string): () => void {
  const filler = join(dir, 'filler');
  const { bavail, bsize } = statfsSync(dir);
  writeFileSync(filler, Buffer.alloc(Number(bavail) * Number(bsize)));
  return () => rmSync(filler, { force: true });
}

describe.skipIf(!canMount)('collector group commit on a disk that fills up (a real 2 MiB tmpfs)', () => {
  it('does not acknowledge a batch whose commit failed: the broker delivers it again and every sample is stored once there is room', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const fs = mountTmpfs('2m');
    cleanups.push(fs.unmount);
    const file = join(fs.dir, 'monitor.db');
    const writer = new Slot<HistoryWriter>();
    writer.set(await HistoryWriter.start(file, limits));
    cleanups.push(() => writer.current?.close());
    const reader = History.openReader(file, limits);
    cleanups.push(() => reader.close());
    const { actor, stats } = runCollector(broker.url, writer);
    await waitFor(() => actor.getSnapshot().context.state === 'subscribed', 'collector subscribed');

    const free = fill(fs.dir);
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'full-disk-publisher' });
    cleanups.push(() => publisher.endAsync());
    const values = Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`metric-${k}`, k]));
    for (let i = 0; i < 30; i++)
      await publisher.publishAsync(`devices/dev-${i % 3}/monitoring`, JSON.stringify({ schema: 1, ts: 1_000_000 + i * 1000, values }), { qos: 1 });
    await waitFor(() => stats.collectorStoreFailures > 0 || undefined, 'a commit refused by the full disk');
    expect(reader.deviceList()).toEqual([]); // nothing of the failed batches is stored

    free();
    const stored = () => ['dev-0', 'dev-1', 'dev-2'].reduce((n, d) => n + reader.series(d, 'metric-0', 0, 2_000_000, 2000).reduce((c, p) => c + p.count, 0), 0);
    await waitFor(() => stored() === 30 || undefined, 'every sample stored after the broker sent them again', 20_000);
    expect(reader.series('dev-1', 'metric-7', 0, 2_000_000, 2000).map((p) => p.avg)).toEqual(Array(10).fill(7));
    expect(stats.collectorStoreFailures).toBeGreaterThan(0);
  });
});
