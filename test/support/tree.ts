import { createActor, fromPromise } from 'xstate';
import { linkMachine } from '../../machines/link.js';
import { listenerMachine } from '../../machines/listener.js';
import { outboxMachine } from '../../machines/outbox.js';
import { supervisorMachine, type SupervisorInput } from '../../machines/supervisor.js';
import { createApp, type AppDeps } from '../../src/http/app.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { ActorChanges } from '../../src/observe.js';
import type { DeadLetters } from '../../src/outbox/dead-letters.js';
import type { Outbox } from '../../src/outbox/queue.js';
import { Slot } from '../../src/slot.js';
import { fakeCallback } from './fakes.js';

export const treeInput: SupervisorInput = {
  enabled: { broker: false, link: true, outbox: true, jobs: false, devices: false, firmware: false, monitor: false, http: true },
  inputs: {
    broker: { name: 'embedded broker', host: '127.0.0.1', port: 1883 },
    link: { broker: 'mqtt://127.0.0.1:1883', backoff: { minMs: 5000, maxMs: 10_000 }, stableMs: 10_000, jitterSeed: 1 },
    outbox: undefined,
    jobs: { direct: false, retry: { minMs: 100, maxMs: 1000 }, jitterSeed: 1 },
    devices: { maxDevices: 8, retry: { minMs: 100, maxMs: 1000 }, jitterSeed: 1 },
    firmware: { maxBytes: 1 << 20, maxEntries: 10, freshnessMs: 60_000, retry: { minMs: 1000, maxMs: 60_000 }, jitterSeed: 1 },
    monitor: { intervalMs: 10_000, alerts: { rules: [], thingName: 'test' }, retry: { minMs: 1000, maxMs: 60_000 }, jitterSeed: 1 },
    http: { name: 'http', host: '127.0.0.1', port: 8080 },
  },
  restart: { backoff: { minMs: 50, maxMs: 100 }, maxRestarts: 3, stableMs: 60_000, jitterSeed: 1 },
  drainTimeoutMs: 1000,
};

/** The real supervisor, link and listener charts with fake I/O actors the test drives. */
export function fakeTree() {
  const mqttClient = fakeCallback();
  const server = fakeCallback();
  const store = fakeCallback();
  const changes = new ActorChanges();
  const machine = supervisorMachine.provide({
    actors: {
      prepare: fromPromise<void, void>(async () => {}),
      drain: fromPromise<void, void>(async () => {}),
      link: linkMachine.provide({ actors: { mqttClient: mqttClient.logic } }),
      outbox: outboxMachine.provide({ actors: { outboxStore: store.logic } }),
      http: listenerMachine.provide({ actors: { server: server.logic } }),
      broker: listenerMachine.provide({ actors: { server: fakeCallback().logic } }),
    },
  });
  const actor = createActor(machine, { id: 'supervisor', input: treeInput, inspect: changes.inspect });
  actor.start();
  return {
    actor,
    changes,
    root: () => actor,
    /** brings link online, the outbox open and http listening */
    async healthy() {
      await new Promise((resolve) => setImmediate(resolve));
      mqttClient.current.sendBack({ type: 'mqtt.connected', at: 1 });
      store.current.sendBack({ type: 'outbox.opened', counters: { depth: 0, bytes: 0, full: false, enqueued: 0, delivered: 0, dropped: 0, refused: 0 } });
      server.current.sendBack({ type: 'server.listening', host: '127.0.0.1', port: 8080 });
    },
    store,
    dropLink() {
      mqttClient.current.sendBack({ type: 'mqtt.closed', error: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1883' } });
    },
  };
}

/** The real app over a fake tree, as the runtime builds it. */
export function appFor(
  tree: ReturnType<typeof fakeTree>,
  options: { token?: string; outbox?: Outbox; deadLetters?: DeadLetters; wsCoalesceMs?: number; devices?: AppDeps['devices']; dashboardDir?: string } = {},
) {
  const outbox = new Slot<Outbox>();
  if (options.outbox) outbox.set(options.outbox);
  const deadLetters = new Slot<DeadLetters>();
  if (options.deadLetters) deadLetters.set(options.deadLetters);
  return createApp({
    root: tree.root,
    metrics: createMetrics(tree.root, { outbox, deadLetters }),
    changes: tree.changes,
    outbox,
    deadLetters,
    maxPayloadBytes: 1024,
    log: createLogger({ level: 'silent' }),
    token: options.token,
    wsCoalesceMs: options.wsCoalesceMs,
    devices: options.devices,
    dashboardDir: options.dashboardDir,
  });
}

/** A response body as loosely typed JSON, for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = (res: Response): Promise<any> => res.json();
