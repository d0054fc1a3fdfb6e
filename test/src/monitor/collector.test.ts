import { rmSync, statfsSync, writeFileSync } from 'node:fs';
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
function runCollector(url: string, writer: Slot<HistoryWriter>, stats = emptyMonitorStats()) {
  const closing = new Closing();
  const logic = collectorActor({
    enabled: true,
    url,
    options: { reconnectPeriod: 200 },
    topicPrefix: 'devices',
    thingName: 'collector-test',
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
  cleanups.push(async () => (actor.stop(), await closing.settled()));
  return { actor, stats };
}

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
