import type { Registry } from 'prom-client';
import type { AnyActorRef } from 'xstate';
import { concerns, type SupervisorContext } from '../machines/supervisor.js';
import { healthView, phaseOf, type Phase } from './views.js';
import type { DeviceHub } from './devices/hub.js';
import { devicesView } from './devices/view.js';
import type { JobStats } from './jobs/stats.js';
import type { DeadLetters } from './outbox/dead-letters.js';
import type { MonitorStats } from './monitor/stats.js';
import type { AlertsContext } from '../machines/alerts.js';
import type { Outbox, OutboxStats } from './outbox/queue.js';
import type { Slot } from './slot.js';

/** The firmware concern's figures, read at scrape time. */
export interface FirmwareFigures {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  registryErrors: number;
  registryRequests: number;
}

const phases: Phase[] = ['starting', 'running', 'degraded', 'stopping', 'stopped'];

export interface Metrics {
  scrape(): Promise<{ body: string; contentType: string }>;
}

/**
 * /metrics: the process figures prom-client collects, and gauges read from the actor tree at
 * scrape time (so there is no second copy of the state to keep in step). prom-client is
 * loaded at the first scrape, not at start-up: it costs ~45 ms of import time.
 */
/** Where each enabled concern's figures are read from at scrape time. */
export interface MetricSources {
  outbox?: Slot<Outbox>;
  deadLetters?: Slot<DeadLetters>;
  jobs?: JobStats;
  firmware?: () => FirmwareFigures;
  devices?: DeviceHub;
  /** host monitoring: the sampler's and collector's figures, and values stored in the history */
  monitor?: () => MonitorStats & { valuesStored: number };
}

export function createMetrics(root: () => AnyActorRef | undefined, sources: MetricSources = {}): Metrics {
  let registry: Promise<Registry> | undefined;
  return {
    async scrape() {
      // prom-client is CommonJS: bundled, its exports arrive as the default export
      registry ??= import('prom-client').then((module) => buildRegistry(module.default ?? module, root, sources));
      const ready = await registry;
      return { body: await ready.metrics(), contentType: ready.contentType };
    },
  };
}

/** prom-client counts CPU from its registration (the first scrape) on: add what the process used before. */
function countCpuBefore(registry: Registry, usage: NodeJS.CpuUsage): void {
  const add = (name: string, micros: number) => (registry.getSingleMetric(name) as { inc?: (n: number) => void } | undefined)?.inc?.(micros / 1e6);
  add('process_cpu_user_seconds_total', usage.user);
  add('process_cpu_system_seconds_total', usage.system);
  add('process_cpu_seconds_total', usage.user + usage.system);
}

type Client = typeof import('prom-client');

function buildRegistry(client: Client, root: () => AnyActorRef | undefined, sources: MetricSources): Registry {
  const { outbox, deadLetters, jobs, firmware, devices, monitor } = sources;
  const registry = new client.Registry();
  const before = process.cpuUsage();
  client.collectDefaultMetrics({ register: registry });
  countCpuBefore(registry, before);
  treeMetrics(client, registry, root);
  outboxMetrics(client, registry, outbox, deadLetters);
  if (jobs) jobMetrics(client, registry, jobs);
  if (firmware) firmwareMetrics(client, registry, firmware);
  if (devices) deviceMetrics(client, registry, root, devices);
  if (monitor) {
    monitorMetrics(client, registry, monitor);
    alertMetrics(client, registry, root);
  }
  return registry;
}

/** The supervisor's phase, and each concern's state, health and restarts. */
function treeMetrics({ Gauge }: Client, registry: Registry, root: () => AnyActorRef | undefined): void {
  new Gauge({
    name: 'edgevisor_supervisor_state',
    help: 'Supervisor phase: 1 for the current one',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const ref = root();
      const current = ref ? phaseOf(ref) : 'starting';
      for (const phase of phases) this.set({ state: phase }, phase === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgevisor_concern_state',
    help: "Each concern's current state (1); states it left are dropped",
    labelNames: ['concern', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const ref = root();
      if (!ref) return;
      for (const [name, health] of Object.entries(healthView(ref).concerns)) this.set({ concern: name, state: health.state }, 1);
    },
  });
  new Gauge({
    name: 'edgevisor_concern_healthy',
    help: 'Whether each enabled concern is healthy (1) or not (0)',
    labelNames: ['concern'],
    registers: [registry],
    collect() {
      this.reset();
      const ref = root();
      if (!ref) return;
      for (const [name, health] of Object.entries(healthView(ref).concerns)) this.set({ concern: name }, health.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edgevisor_concern_restarts',
    help: 'Restarts in a row after crashes, per concern (resets once the concern stays up)',
    labelNames: ['concern'],
    registers: [registry],
    collect() {
      const context = root()?.getSnapshot().context as SupervisorContext | undefined;
      if (!context) return;
      for (const name of concerns) this.set({ concern: name }, context.restarts[name]);
    },
  });
}

/** The outbox's figures come from the store itself (the data plane), read at scrape time. */
function outboxMetrics({ Counter, Gauge }: Client, registry: Registry, outbox: MetricSources['outbox'], deadLetters: MetricSources['deadLetters']): void {
  const outboxFigure = (stat: keyof OutboxStats, help: string, kind: 'gauge' | 'counter') => {
    const name = `edgevisor_outbox_${stat.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}${kind === 'counter' ? '_total' : ''}`;
    const collect = function (this: { reset(): void; inc?(v: number): void; set?(v: number): void }) {
      const stats = outbox?.current?.stats();
      if (!stats) return;
      const value = Number(stats[stat]);
      if (this.set) this.set(value);
      else this.reset(), this.inc!(value);
    };
    if (kind === 'gauge') new Gauge({ name, help, registers: [registry], collect });
    else new Counter({ name, help, registers: [registry], collect });
  };
  outboxFigure('depth', 'Messages waiting in the outbox', 'gauge');
  outboxFigure('bytes', 'Topic and payload bytes waiting in the outbox', 'gauge');
  outboxFigure('enqueued', 'Messages accepted since start', 'counter');
  outboxFigure('delivered', 'Messages acknowledged by the broker since start', 'counter');
  outboxFigure('dropped', 'Messages dropped by the overflow policy since start', 'counter');
  outboxFigure('refused', 'Messages refused (queue full or too large) since start', 'counter');
  outboxFigure('bytesWritten', 'Bytes written to the outbox log since start', 'counter');
  outboxFigure('syncs', 'fdatasync calls (group commits) since start', 'counter');
  outboxFigure('deadLettered', 'Messages moved to the dead letters (they kept ending the connection) since start', 'counter');
  new Gauge({
    name: 'edgevisor_outbox_dead_letters',
    help: 'Dead letters kept, waiting for a retry or a drop',
    registers: [registry],
    collect() {
      const store = deadLetters?.current;
      if (store) this.set(store.size);
    },
  });
  new Gauge({
    name: 'edgevisor_outbox_unwritable',
    help: 'Whether the disk refuses the outbox its writes (1): new messages are refused meanwhile',
    registers: [registry],
    collect() {
      const stats = outbox?.current?.stats();
      if (stats) this.set(stats.unwritable ? 1 : 0);
    },
  });
}

function jobMetrics(client: Client, registry: Registry, jobs: NonNullable<MetricSources['jobs']>): void {
  const { Counter, Gauge } = client;
  const counter = (name: string, help: string, value: () => number) => totalCounter(client, registry, name, help, value);
  new Counter({
    name: 'edgevisor_jobs_total',
    help: 'Job executions finished since start, by outcome',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [status, n] of Object.entries(jobs.finished)) this.inc({ status }, n);
    },
  });
  counter('edgevisor_job_step_seconds_total', 'Seconds spent running job steps since start', () => jobs.stepSeconds);
  counter('edgevisor_job_step_timeouts_total', 'Job steps killed by their timeout since start', () => jobs.stepTimeouts);
  counter('edgevisor_job_refusals_total', 'Job documents or steps refused before anything ran, since start', () => jobs.refusals);
  new Gauge({
    name: 'edgevisor_jobs_launcher_info',
    help: 'How job programs start (config jobs.launcher): 1 for the launcher in use',
    labelNames: ['launcher'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ launcher: jobs.launcher }, 1);
    },
  });
}

function firmwareMetrics(client: Client, registry: Registry, firmware: NonNullable<MetricSources['firmware']>): void {
  const { Gauge } = client;
  const counter = (name: string, help: string, value: () => number) => totalCounter(client, registry, name, help, value);
  const figure = (name: string, help: string, kind: 'gauge' | 'counter', key: keyof FirmwareFigures) =>
    kind === 'gauge'
      ? new Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            this.set(firmware()[key]);
          },
        })
      : counter(name, help, () => firmware()[key]);
  figure('edgevisor_firmware_cache_hits_total', 'Firmware requests answered from memory since start', 'counter', 'hits');
  figure('edgevisor_firmware_cache_misses_total', 'Firmware requests that had to wait for the registry or the disk cache', 'counter', 'misses');
  figure('edgevisor_firmware_cache_entries', 'Devices with a firmware cache entry', 'gauge', 'entries');
  figure('edgevisor_firmware_cache_bytes', 'Bytes of verified firmware held in memory', 'gauge', 'bytes');
  figure('edgevisor_firmware_registry_errors_total', 'Failed registry requests since start', 'counter', 'registryErrors');
  figure('edgevisor_firmware_registry_requests_total', 'Registry requests since start', 'counter', 'registryRequests');
}

/** Per peripheral (present or remembered): frames, bytes, malformed frames, reconnects; and how many are present. */
function deviceMetrics(client: typeof import('prom-client'), registry: Registry, root: () => AnyActorRef | undefined, hub: DeviceHub): void {
  const rows = () => devicesView(root()?.system.get('devices'), hub).devices;
  const perDevice = (name: string, help: string, figure: 'frames' | 'bytes' | 'errors' | 'reconnects' | 'dropped' | 'writes') =>
    new client.Counter({
      name,
      help,
      labelNames: ['device', 'profile'],
      registers: [registry],
      collect() {
        this.reset();
        for (const row of rows()) this.inc({ device: row.id, profile: row.profile ?? '' }, row.counters[figure]);
      },
    });
  perDevice('edgevisor_device_frames_total', 'Frames parsed and published per peripheral', 'frames');
  perDevice('edgevisor_device_bytes_total', 'Bytes read per peripheral', 'bytes');
  perDevice('edgevisor_device_errors_total', 'Malformed frames counted and skipped per peripheral', 'errors');
  perDevice('edgevisor_device_reconnects_total', 'Times a peripheral port was opened again after failing or closing', 'reconnects');
  perDevice('edgevisor_device_dropped_total', 'Readings the outbox did not take, per peripheral', 'dropped');
  const byReason = (name: string, help: string, figure: 'rejected' | 'writesRefused') =>
    new client.Counter({
      name,
      help,
      // reasons are fixed sets of codes (frameRejections, writeRefusals): bounded label values
      labelNames: ['device', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const row of rows()) for (const [reason, n] of Object.entries(row.counters[figure])) this.inc({ device: row.id, reason }, n ?? 0);
      },
    });
  byReason('edgevisor_device_frames_rejected_total', 'Frames rejected per peripheral, by reason code', 'rejected');
  byReason('edgevisor_device_writes_refused_total', 'Commands to a peripheral refused, by reason code', 'writesRefused');
  perDevice('edgevisor_device_writes_total', 'Commands written to a peripheral', 'writes');
  new client.Gauge({
    name: 'edgevisor_device_state',
    help: "Each peripheral's current state (1)",
    labelNames: ['device', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of rows()) this.set({ device: row.id, state: row.state }, 1);
    },
  });
}

/** A counter whose total is kept elsewhere and read at scrape time. */
function totalCounter(client: typeof import('prom-client'), registry: Registry, name: string, help: string, read: () => number) {
  return new client.Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The alerts manager's figures, read from its snapshot (the monitor invokes it with systemId 'alerts'). */
function alertMetrics(client: typeof import('prom-client'), registry: Registry, root: () => AnyActorRef | undefined): void {
  const context = () => root()?.system.get('alerts')?.getSnapshot().context as AlertsContext | undefined;
  new client.Gauge({
    name: 'edgevisor_alerts_firing',
    help: 'Alerts (rule x device) firing now',
    registers: [registry],
    collect() {
      this.set(Object.values(context()?.alerts ?? {}).filter((alert) => alert.level === 'firing').length);
    },
  });
  const counter = (name: string, help: string, key: keyof AlertsContext['counters']) =>
    totalCounter(client, registry, name, help, () => context()?.counters[key] ?? 0);
  counter('edgevisor_alert_notices_total', 'Alert notices (firing, resolved) handed to the notifier', 'notices');
  counter('edgevisor_alert_notices_suppressed_total', 'Alert notices held back by the per-rule rate limit', 'suppressed');
  counter('edgevisor_alerts_refused_total', 'Rule x device alerts refused by monitor.maxAlerts', 'refused');
  new client.Gauge({
    name: 'edgevisor_alert_notices_pending',
    help: 'Alert notices waiting for their channel (slack, mqtt)',
    labelNames: ['channel'],
    registers: [registry],
    collect() {
      this.reset();
      for (const status of Object.values(context()?.delivery ?? {})) this.set({ channel: status.channel }, status.pending);
    },
  });
}

/** The monitor's own figures: what sampling costs, what is stored, what the collector takes and refuses. */
function monitorMetrics(client: typeof import('prom-client'), registry: Registry, figures: () => MonitorStats & { valuesStored: number }): void {
  const counter = (name: string, help: string, key: keyof MonitorStats | 'valuesStored') => totalCounter(client, registry, name, help, () => figures()[key]);
  counter('edgevisor_monitor_samples_total', 'Host samples taken since start', 'samples');
  counter('edgevisor_monitor_sample_seconds_total', 'Seconds spent taking, storing and queueing host samples since start', 'sampleSecondsTotal');
  new client.Gauge({
    name: 'edgevisor_monitor_sample_seconds',
    help: 'How long the last host sample took',
    registers: [registry],
    collect() {
      this.set(figures().lastSampleSeconds);
    },
  });
  counter('edgevisor_monitor_values_stored_total', 'Metric values written to the history since start (own and collected)', 'valuesStored');
  counter('edgevisor_monitor_publish_failures_total', 'Own samples the outbox did not take', 'publishFailures');
  counter('edgevisor_monitor_collector_messages_total', 'Monitoring messages the collector received', 'collectorMessages');
  counter(
    'edgevisor_monitor_collector_rejects_total',
    'Monitoring messages refused as invalid (counted, logged once per device per minute, dropped)',
    'collectorRejects',
  );
  counter(
    'edgevisor_monitor_collector_store_failures_total',
    'Collected samples that could not be stored and were left unacknowledged',
    'collectorStoreFailures',
  );
}
