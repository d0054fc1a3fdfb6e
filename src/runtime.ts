import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import type { MqttClient } from 'mqtt';
import { linkMachine } from '../machines/link.js';
import { listenerMachine } from '../machines/listener.js';
import { outboxMachine } from '../machines/outbox.js';
import { supervisorMachine, type SupervisorInput, type SupervisorOutput } from '../machines/supervisor.js';
import { devicesActors } from './actors/devices/index.js';
import { embeddedBrokerActor } from './actors/embedded-broker.js';
import { agentCredentials, type Credentials } from './broker/credentials.js';
import { firmwareActors } from './actors/firmware/index.js';
import { httpServerActor } from './actors/http-server.js';
import { jobsActors } from './actors/jobs/index.js';
import { monitorActors } from './actors/monitor/index.js';
import { alertsActors } from './actors/alerts/index.js';
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

/** What every concern may share: made once per process, outside what the supervisor restarts. */
interface Shared {
  config: Config;
  log: Logger;
  closing: Closing;
  changes: ActorChanges;
  root: () => Runtime['actor'] | undefined;
  session: Slot<MqttClient>;
  outbox: Slot<Outbox>;
  deadLetters: Slot<DeadLetters>;
  /** the agent's own user on the embedded broker, made in `prepare` */
  credentials: { make(): void; get(): Credentials };
}

/** The composition root: real actors into the pure charts, one root actor, a clean stop. */
export function startRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Runtime {
  let actor: Runtime['actor'] | undefined;
  const shared = sharedParts(config, log, () => actor);
  const concerns = concernParts(shared);
  const machine = supervisorMachine.provide({
    actors: {
      prepare: fromPromise<void, void>(async () => {
        await prepareStateDir(config.stateDir);
        if (config.mqtt.url === 'embedded') shared.credentials.make();
      }),
      drain: fromPromise<void, void>(() => shared.closing.settled()),
      ...concerns.machines,
      http: httpConcern(shared, concerns),
    },
  });

  const supervisorLog = forConcern(log, 'supervisor');
  actor = createActor(machine, {
    input: supervisorInput(config),
    id: 'supervisor',
    systemId: 'supervisor',
    inspect: (event) => {
      shared.changes.inspect(event);
      options.inspect?.(event);
    },
  });
  const done = settled(actor, shared);
  watchRestarts(actor, supervisorLog);
  actor.start();
  for (const { key, message } of httpWarnings(config)) forConcern(log, 'http').warn({ key }, message);
  supervisorLog.info({ thingName: config.thingName, broker: publicBrokerUrl(config) }, 'started');
  return { actor, done, outbox: shared.outbox, stop: () => actor!.send({ type: 'supervisor.stop' }) };
}

function sharedParts(config: Config, log: Logger, root: Shared['root']): Shared {
  let own: Credentials | undefined;
  return {
    config,
    log,
    closing: new Closing((what, error) => log.warn({ what, err: String(error) }, 'close failed')),
    changes: new ActorChanges(forConcern(log, 'tree')),
    root,
    session: new Slot<MqttClient>(),
    outbox: new Slot<Outbox>(),
    deadLetters: new Slot<DeadLetters>(),
    credentials: {
      make: () => (own = agentCredentials(config.stateDir)),
      get: () => {
        // a start-up failure in `prepare` stops the agent with its reason before anyone asks
        if (!own) throw new Error('the embedded broker credentials are not made yet');
        return own;
      },
    },
  };
}

type ConcernParts = ReturnType<typeof concernParts>;

/** Each concern's chart with its real actors, and what the API and /metrics read beside them. */
function concernParts(shared: Shared) {
  const { config, log, closing, session, changes } = shared;
  const system = (id: string) => shared.root()?.system.get(id);
  const jobs = jobsActors({ config, session, log: forConcern(log, 'jobs') });
  const firmware = firmwareActors({ config, log: forConcern(log, 'firmware') });
  const firmwareService = new FirmwareService(shared.root, changes, {
    blobs: firmware.blobs,
    waitMs: 120_000,
    onTouched: (devices) => firmware.disk.touch(devices),
    log: forConcern(log, 'firmware'),
  });
  const devices = devicesActors({
    config,
    outbox: shared.outbox,
    session,
    changes,
    manager: () => system('devices'),
    closing,
    log: forConcern(log, 'devices'),
  });
  const monitor = monitorActors({
    config,
    outbox: shared.outbox,
    closing,
    alerts: alertsMachine.provide({ actors: alertsParts(shared).actors }),
    log: forConcern(log, 'monitor'),
  });
  const credentials = config.mqtt.url === 'embedded' ? () => shared.credentials.get() : undefined;
  const machines = {
    broker: listenerMachine.provide({
      actors: { server: embeddedBrokerActor({ closing, log: forConcern(log, 'broker'), config, credentials: () => shared.credentials.get() }) },
    }),
    link: linkMachine.provide({
      actors: {
        mqttClient: mqttClientActor({
          url: brokerUrl(config),
          options: mqttOptions(config),
          statusTopic: statusTopic(config.thingName),
          credentials,
          session,
          closing,
          log: forConcern(log, 'link'),
        }),
      },
    }),
    outbox: outboxMachine.provide({
      actors: {
        outboxStore: outboxStoreActor(
          outboxStoreDeps(config, { session, outbox: shared.outbox, deadLetters: shared.deadLetters, closing, log: forConcern(log, 'outbox') }),
        ),
      },
    }),
    jobs: jobs.machine,
    firmware: firmware.machine,
    devices: devices.machine,
    monitor: monitor.machine,
  };
  const firmwareFigures = () => {
    const manager = system('firmware')?.getSnapshot().context as { counters?: { entries: number; bytes: number } } | undefined;
    return {
      ...firmwareService.stats,
      entries: manager?.counters?.entries ?? 0,
      bytes: manager?.counters?.bytes ?? 0,
      registryErrors: firmware.client.stats.errors,
      registryRequests: firmware.client.stats.requests,
    };
  };
  return { machines, jobs, firmwareService, firmwareFigures, devices, monitor };
}

/** Made once per process (outside what the supervisor restarts): one alert store over restarts. */
function alertsParts({ config, outbox, log }: Shared) {
  return alertsActors({
    stateDir: config.stateDir,
    thingName: config.thingName,
    topicPrefix: config.monitor.topicPrefix,
    slackWebhookUrl: config.monitor.slackWebhookUrl,
    slackMaxPending: config.monitor.slackMaxPending,
    outbox,
    log: forConcern(log, 'alerts'),
  });
}

/** The API, /ws, the dashboard and the OtaFlux routes over the concerns' parts. */
function httpConcern(shared: Shared, parts: ConcernParts) {
  const { config, log, root } = shared;
  const { jobs, devices, monitor, firmwareService } = parts;
  const app = createApp({
    root,
    metrics: createMetrics(root, {
      outbox: shared.outbox,
      deadLetters: shared.deadLetters,
      jobs: jobs.stats,
      firmware: config.firmware.enabled ? parts.firmwareFigures : undefined,
      devices: devices.hub,
      monitor: config.monitor.enabled ? () => ({ ...monitor.stats, valuesStored: monitor.writer.current?.stats.valuesStored ?? 0 }) : undefined,
    }),
    changes: shared.changes,
    outbox: shared.outbox,
    deadLetters: shared.deadLetters,
    maxPayloadBytes: config.outbox.maxPayloadBytes,
    jobRecords: jobs.records,
    devices: { hub: devices.hub, profiles: devices.profiles, known: devices.known, writer: devices.writer },
    monitor: config.monitor.enabled ? { history: monitor.history, hub: monitor.hub, thingName: config.thingName, intervalMs: monitor.intervalMs } : undefined,
    log: forConcern(log, 'http'),
    token: config.http.token,
    // dist/bundle/main.js → dist/dashboard/
    dashboardDir: fileURLToPath(new URL('../dashboard/', import.meta.url)),
    guard: {
      hosts: new AllowedHosts({ listenHost: config.http.host, allowedHosts: config.http.allowedHosts }),
      allowedOrigins: config.http.allowedOrigins,
      maxBodyBytes: config.http.maxBodyBytes,
    },
    wsLimits: { maxClients: config.http.wsMaxClients, requestsPerSecond: config.http.wsRequestsPerSecond, burst: config.http.wsRequestBurst },
    firmware: config.firmware.enabled
      ? {
          firmware: firmwareService,
          repositoryPrefix: config.firmware.registry.repositoryPrefix,
          notifyTopicPrefix: config.firmware.notifyTopicPrefix,
          webhookSecret: config.firmware.webhookSecret,
        }
      : undefined,
  });
  return listenerMachine.provide({
    actors: {
      server: httpServerActor({
        fetch: app.fetch,
        closing: shared.closing,
        log: forConcern(log, 'http'),
        fastPath: config.firmware.enabled ? firmwareFastPath(firmwareService) : undefined,
        wsMaxPayloadBytes: config.http.wsMaxPayloadBytes,
      }),
    },
  });
}

/** Resolves once the tree has stopped and what it opened is closed (or the drain time is up). */
function settled(actor: NonNullable<Runtime['actor']>, { closing, config }: Shared): Promise<SupervisorOutput> {
  return new Promise<SupervisorOutput>((resolve) => {
    actor.subscribe({
      complete: () => resolve(actor.getSnapshot().output ?? { reason: null }),
      // Only a bug in the supervisor itself lands here; systemd restarts the process.
      error: (error) => resolve({ reason: `supervisor crashed: ${String(error)}` }),
    });
  }).then(async (output) => {
    await Promise.race([closing.settled(), new Promise((r) => setTimeout(r, ms(config.supervisor.drainSeconds)).unref())]);
    return output;
  });
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
