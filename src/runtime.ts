import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import type { MqttClient } from 'mqtt';
import { devicesMachine } from '../machines/devices.js';
import { jobsMachine } from '../machines/jobs.js';
import { linkMachine } from '../machines/link.js';
import { listenerMachine } from '../machines/listener.js';
import { outboxMachine } from '../machines/outbox.js';
import { supervisorMachine, type SupervisorInput, type SupervisorOutput } from '../machines/supervisor.js';
import { devicesActors } from './actors/devices.js';
import { embeddedBrokerActor } from './actors/embedded-broker.js';
import { agentCredentials, type Credentials } from './broker/credentials.js';
import { firmwareActors } from './actors/firmware.js';
import { httpServerActor } from './actors/http-server.js';
import { jobsActors } from './actors/jobs.js';
import { monitorActors } from './actors/monitor/index.js';
import { alertsActors } from './alerts/index.js';
import { alertsMachine } from '../machines/alerts.js';
import { mqttClientActor } from './actors/mqtt-client.js';
import { outboxStoreActor, type OutboxStoreDeps } from './actors/outbox-store.js';
import { Closing } from './closing.js';
import type { Config } from './config/schema.js';
import { FirmwareService } from './firmware/service.js';
import { AllowedHosts } from './http/allowed-hosts.js';
import { createApp } from './http/app.js';
import { firmwareFastPath } from './http/firmware-fast-path.js';
import { httpWarnings } from './http/startup-warnings.js';
import { forConcern, type Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { brokerUrl, mqttOptions, publicBrokerUrl, statusTopic } from './mqtt/options.js';
import { ActorChanges } from './observe.js';
import type { DeadLetters } from './outbox/dead-letters.js';
import type { Outbox } from './outbox/queue.js';
import { Slot } from './slot.js';
import { watchRestarts } from './supervision-log.js';

export interface RuntimeOptions {
  /** an extra inspection observer, e.g. the Stately inspector in development */
  inspect?: (event: InspectionEvent) => void;
}

export interface Runtime {
  actor: Actor<typeof supervisorMachine>;
  /** resolves once the tree has stopped and everything it opened is closed */
  done: Promise<SupervisorOutput>;
  /** the durable outbox while it is open: what local code sends upstream goes here */
  outbox: Slot<Outbox>;
  stop(): void;
}

const ms = (seconds: number) => Math.round(seconds * 1000);

/** The composition root: real actors into the pure charts, one root actor, a clean stop. */
export function startRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Runtime {
  const closing = new Closing((what, error) => log.warn({ what, err: String(error) }, 'close failed'));
  const changes = new ActorChanges(forConcern(log, 'tree'));
  let actor: Runtime['actor'] | undefined;
  const root = () => actor;
  const session = new Slot<MqttClient>();
  const outboxSlot = new Slot<Outbox>();
  // The agent's own user on the embedded broker, made in `prepare` (a start-up failure there
  // stops the agent with its reason).
  let ownCredentials: Credentials | undefined;
  const credentials = () => {
    if (!ownCredentials) throw new Error('the embedded broker credentials are not made yet');
    return ownCredentials;
  };

  const link = linkMachine.provide({
    actors: {
      mqttClient: mqttClientActor({
        url: brokerUrl(config),
        options: mqttOptions(config),
        statusTopic: statusTopic(config.thingName),
        credentials: config.mqtt.url === 'embedded' ? credentials : undefined,
        session,
        closing,
        log: forConcern(log, 'link'),
      }),
    },
  });
  const deadLetters = new Slot<DeadLetters>();
  const outbox = outboxMachine.provide({
    actors: { outboxStore: outboxStoreActor(outboxStoreDeps(config, { session, outbox: outboxSlot, deadLetters, closing, log: forConcern(log, 'outbox') })) },
  });
  const jobsParts = jobsActors({ config, session, log: forConcern(log, 'jobs') });
  const jobs = jobsMachine.provide({ actors: jobsParts.actors });
  const firmwareService = new FirmwareService(root, changes, { waitMs: 120_000, onTouched: (devices) => firmwareParts.disk.touch(devices), log: forConcern(log, 'firmware') });
  const firmwareParts = firmwareActors({ config, service: firmwareService, log: forConcern(log, 'firmware') });
  const firmwareFigures = () => {
    const manager = actor?.system.get('firmware')?.getSnapshot().context as { counters?: { entries: number; bytes: number } } | undefined;
    return { ...firmwareService.stats, entries: manager?.counters?.entries ?? 0, bytes: manager?.counters?.bytes ?? 0, registryErrors: firmwareParts.client.stats.errors, registryRequests: firmwareParts.client.stats.requests };
  };
  const devicesParts = devicesActors({ config, outbox: outboxSlot, session, manager: () => actor?.system.get('devices'), closing, log: forConcern(log, 'devices') });
  const devices = devicesMachine.provide({ actors: devicesParts.actors, actions: { refused: devicesParts.refused } });
  // Made once per process (outside what the supervisor restarts): one alert store over restarts.
  const alertParts = alertsActors({
    stateDir: config.stateDir,
    thingName: config.thingName,
    topicPrefix: config.monitor.topicPrefix,
    slackWebhookUrl: config.monitor.slackWebhookUrl,
    slackMaxPending: config.monitor.slackMaxPending,
    outbox: outboxSlot,
    log: forConcern(log, 'alerts'),
  });
  const monitorParts = monitorActors({ config, outbox: outboxSlot, closing, alerts: alertsMachine.provide({ actors: alertParts.actors }), log: forConcern(log, 'monitor') });
  const app = createApp({
    root,
    metrics: createMetrics(root, {
      outbox: outboxSlot,
      deadLetters,
      jobs: jobsParts.stats,
      firmware: config.firmware.enabled ? firmwareFigures : undefined,
      devices: devicesParts.hub,
      monitor: config.monitor.enabled ? () => ({ ...monitorParts.stats, valuesStored: monitorParts.writer.current?.stats.valuesStored ?? 0 }) : undefined,
    }),
    changes,
    outbox: outboxSlot,
    deadLetters,
    maxPayloadBytes: config.outbox.maxPayloadBytes,
    jobRecords: jobsParts.records,
    devices: { hub: devicesParts.hub, profiles: devicesParts.profiles, known: devicesParts.known, writer: devicesParts.writer },
    monitor: config.monitor.enabled
      ? { history: monitorParts.history, hub: monitorParts.hub, thingName: config.thingName, intervalMs: monitorParts.intervalMs }
      : undefined,
    log: forConcern(log, 'http'),
    token: config.http.token,
    // dist/bundle/main.js → dist/dashboard/
    dashboardDir: fileURLToPath(new URL('../dashboard/', import.meta.url)),
    guard: { hosts: new AllowedHosts({ listenHost: config.http.host, allowedHosts: config.http.allowedHosts }), allowedOrigins: config.http.allowedOrigins, maxBodyBytes: config.http.maxBodyBytes },
    wsLimits: { maxClients: config.http.wsMaxClients, requestsPerSecond: config.http.wsRequestsPerSecond, burst: config.http.wsRequestBurst },
    firmware: config.firmware.enabled
      ? { firmware: firmwareService, repositoryPrefix: config.firmware.registry.repositoryPrefix, notifyTopicPrefix: config.firmware.notifyTopicPrefix, webhookSecret: config.firmware.webhookSecret }
      : undefined,
  });
  const http = listenerMachine.provide({
    actors: {
      server: httpServerActor({
        fetch: app.fetch,
        closing,
        log: forConcern(log, 'http'),
        fastPath: config.firmware.enabled ? firmwareFastPath(firmwareService) : undefined,
        wsMaxPayloadBytes: config.http.wsMaxPayloadBytes,
      }),
    },
  });
  const broker = listenerMachine.provide({
    actors: { server: embeddedBrokerActor({ closing, log: forConcern(log, 'broker'), config, credentials }) },
  });

  const machine = supervisorMachine.provide({
    actors: {
      prepare: fromPromise<void, void>(async () => {
        await prepareStateDir(config.stateDir);
        if (config.mqtt.url === 'embedded') ownCredentials = agentCredentials(config.stateDir);
      }),
      drain: fromPromise<void, void>(() => closing.settled()),
      broker,
      link,
      outbox,
      jobs,
      firmware: firmwareParts.machine,
      devices,
      monitor: monitorParts.machine,
      http,
    },
  });

  const supervisorLog = forConcern(log, 'supervisor');
  actor = createActor(machine, {
    input: supervisorInput(config),
    id: 'supervisor',
    systemId: 'supervisor',
    inspect: (event) => {
      changes.inspect(event);
      options.inspect?.(event);
    },
  });
  const done = new Promise<SupervisorOutput>((resolve) => {
    actor!.subscribe({
      complete: () => resolve(actor!.getSnapshot().output ?? { reason: null }),
      // Only a bug in the supervisor itself lands here; systemd restarts the process.
      error: (error) => resolve({ reason: `supervisor crashed: ${String(error)}` }),
    });
  }).then(async (output) => {
    await Promise.race([closing.settled(), new Promise((r) => setTimeout(r, ms(config.supervisor.drainSeconds)).unref())]);
    return output;
  });
  watchRestarts(actor, supervisorLog);
  actor.start();
  for (const { key, message } of httpWarnings(config)) forConcern(log, 'http').warn({ key }, message);
  supervisorLog.info({ thingName: config.thingName, broker: publicBrokerUrl(config) }, 'started');
  return { actor, done, outbox: outboxSlot, stop: () => actor!.send({ type: 'supervisor.stop' }) };
}

/** The state directory exists and is writable, or start-up stops with a reason naming the key. */
async function prepareStateDir(stateDir: string): Promise<void> {
  try {
    await mkdir(stateDir, { recursive: true });
    await access(stateDir, constants.W_OK);
  } catch (error) {
    throw new Error(`stateDir "${stateDir}" cannot be used: ${(error as Error).message}`);
  }
}

/** The outbox's limits and policies from its config section. */
function outboxStoreDeps(config: Config, parts: Pick<OutboxStoreDeps, 'session' | 'outbox' | 'deadLetters' | 'closing' | 'log'>): OutboxStoreDeps {
  const o = config.outbox;
  return {
    stateDir: config.stateDir,
    limits: {
      maxMessages: o.maxMessages,
      maxBytes: o.maxBytes,
      overflow: o.overflow,
      segmentBytes: o.segmentBytes,
      topics: { allowDollar: o.allowDollarTopics, maxLevels: o.maxTopicLevels, maxBytes: o.maxTopicBytes },
      storageProbeMs: ms(o.storageProbeSeconds),
    },
    maxInFlight: o.maxInFlight,
    poison: { disconnects: o.poisonDisconnects, windowMs: 5000 },
    maxDeadLetters: o.maxDeadLetters,
    ...parts,
  };
}

export function supervisorInput(config: Config): SupervisorInput {
  const s = config.supervisor;
  return {
    enabled: {
      broker: config.mqtt.url === 'embedded',
      link: true,
      outbox: true,
      jobs: config.jobs.enabled,
      devices: config.devices.enabled,
      firmware: config.firmware.enabled,
      monitor: config.monitor.enabled,
      http: true,
    },
    inputs: {
      broker: { name: 'embedded broker', host: config.mqtt.embeddedHost, port: config.mqtt.embeddedPort },
      link: {
        broker: publicBrokerUrl(config),
        backoff: { minMs: ms(config.mqtt.reconnectMinSeconds), maxMs: ms(config.mqtt.reconnectMaxSeconds) },
        stableMs: 10_000,
        jitterSeed: randomInt(2 ** 31),
      },
      outbox: undefined,
      jobs: {
        direct: config.jobs.directStatus,
        launcher: config.jobs.launcher,
        retry: { minMs: ms(config.mqtt.reconnectMinSeconds), maxMs: ms(config.mqtt.reconnectMaxSeconds) },
        jitterSeed: randomInt(2 ** 31),
      },
      firmware: {
        maxBytes: config.firmware.maxCacheBytes,
        maxEntries: config.firmware.maxEntries,
        maxNegativeEntries: config.firmware.maxNegativeEntries,
        freshnessMs: ms(config.firmware.freshnessSeconds),
        retry: { minMs: 1000, maxMs: ms(config.firmware.freshnessSeconds) },
        jitterSeed: randomInt(2 ** 31),
      },
      devices: {
        maxDevices: config.devices.maxDevices,
        retry: { minMs: ms(config.devices.reconnectMinSeconds), maxMs: ms(config.devices.reconnectMaxSeconds) },
        jitterSeed: randomInt(2 ** 31),
      },
      monitor: {
        intervalMs: ms(config.monitor.intervalSeconds),
        alerts: {
          rules: config.monitor.alerts,
          thingName: config.thingName,
          maxAlerts: config.monitor.maxAlerts,
          rateLimit: { max: config.monitor.alertRateLimit.max, windowMs: ms(config.monitor.alertRateLimit.windowSeconds) },
          staleAfterMs: ms(config.monitor.alertStaleSeconds ?? 3 * config.monitor.intervalSeconds),
        },
        retry: { minMs: 1000, maxMs: 60_000 },
        jitterSeed: randomInt(2 ** 31),
      },
      http: { name: 'http', host: config.http.host, port: config.http.port },
    },
    restart: {
      backoff: { minMs: ms(s.restartMinSeconds), maxMs: ms(s.restartMaxSeconds) },
      maxRestarts: s.maxRestarts,
      stableMs: ms(s.stableSeconds),
      jitterSeed: randomInt(2 ** 31),
      exitAfterGiveUpMs: ms(s.exitAfterGiveUpSeconds),
    },
    drainTimeoutMs: ms(s.drainSeconds),
  };
}
