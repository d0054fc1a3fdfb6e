import { join } from 'node:path';
import type { alertsMachine } from '../../../machines/alerts.js';
import { monitorMachine } from '../../../machines/monitor.js';
import type { Closing } from '../../closing.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { brokerUrl, mqttOptions } from '../../mqtt/options.js';
import type { History } from '../../monitor/history.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
import { MonitorHub } from '../../monitor/hub.js';
import { readInventory } from '../../monitor/inventory.js';
import { HostSampler } from '../../monitor/sampler.js';
import { emptyMonitorStats } from '../../monitor/stats.js';
import type { Outbox } from '../../outbox/queue.js';
import { Slot } from '../../slot.js';
import { collectorActor } from './collector.js';
import { historyStoreActor } from './history-store.js';
import { inventoryActor } from './inventory.js';
import { sampleFeedActor } from './sample-feed.js';
import { sampleHostActor } from './sample-host.js';

export interface MonitorDeps {
  config: Config;
  outbox: Slot<Outbox>;
  closing: Closing;
  /** the alerts manager with its notifier (src/actors/alerts/index.ts) */
  alerts: typeof alertsMachine;
  log: Logger;
  now?: () => number;
}

const DAY_MS = 86_400_000;

/** The monitor chart with its real actors, and what the API and /metrics read beside it. */
export function monitorActors(deps: MonitorDeps) {
  const { config, log } = deps;
  const m = config.monitor;
  const now = deps.now ?? Date.now;
  const history = new Slot<History>();
  const writer = new Slot<HistoryWriter>();
  const hub = new MonitorHub();
  const stats = emptyMonitorStats();
  const intervalMs = Math.round(m.intervalSeconds * 1000);
  let sampler: Promise<HostSampler> | undefined;
  const release = () => {
    const current = sampler;
    sampler = undefined;
    void current?.then(
      (s) => s.close(),
      () => {},
    );
  };

  const machine = monitorMachine.provide({
    actors: {
      historyStore: historyStoreActor({
        file: join(config.stateDir, 'monitor.db'),
        limits: { retentionMs: m.retentionDays * DAY_MS, maxBytes: m.maxHistoryBytes, maxDevices: m.maxDevices, maxKeysPerDevice: 1024 },
        history,
        writer,
        pruneEveryMs: Math.min(60_000, Math.max(1000, m.retentionDays * DAY_MS)),
        closing: deps.closing,
        now,
        log,
      }),
      sampleHost: sampleHostActor({
        thingName: config.thingName,
        topic: `${m.topicPrefix}/${config.thingName}/monitoring`,
        sampler: () => (sampler ??= HostSampler.create({ intervalMs, sysRoot: m.sysfsRoot })),
        writer,
        outbox: deps.outbox,
        hub,
        stats,
        now,
        log,
      }),
      sampleFeed: sampleFeedActor({ hub, wanted: m.alerts.length > 0, release }),
      collector: collectorActor({
        enabled: m.collect,
        url: brokerUrl(config),
        options: mqttOptions(config),
        shape: {
          baseId: config.mqtt.clientId ?? config.thingName,
          topicPrefix: m.topicPrefix,
          connections: m.collectorConnections,
          shared: config.mqtt.url !== 'embedded',
        },
        thingName: config.thingName,
        sessionRecord: join(config.stateDir, 'collector-sessions.json'),
        writer,
        hub,
        stats,
        closing: deps.closing,
        now,
        log,
      }),
      inventory: inventoryActor({
        thingName: config.thingName,
        topic: `${m.topicPrefix}/${config.thingName}/inventory`,
        everyMs: Math.round(m.inventoryHours * 3_600_000),
        callTimeoutMs: 15_000,
        read: readInventory,
        writer,
        outbox: deps.outbox,
        now,
        log,
      }),
      alerts: deps.alerts,
    },
  });
  return { machine, history, writer, hub, stats, intervalMs };
}
