import { assign, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

/** Events the mqttClient actor sends back: facts about one connection attempt. */
export type MqttClientEvent = { type: 'mqtt.connected'; at: number } | { type: 'mqtt.closed'; error?: Failure };

/** Commands from the API or the supervisor. */
export type LinkCommand = { type: 'link.connect' } | { type: 'link.disconnect' } | { type: 'link.reconnect' };

export type LinkEvent = MqttClientEvent | LinkCommand;

export interface LinkInput {
  /** broker address without credentials, shown in state views */
  broker: string;
  backoff: BackoffPolicy;
  /** how long a connection must hold before the retry count resets, in ms */
  stableMs: number;
  /** seeds the backoff jitter (the runtime passes a random number) */
  jitterSeed: number;
  autoConnect?: boolean;
}

export interface LinkContext {
  broker: string;
  backoff: BackoffPolicy;
  stableMs: number;
  jitterSeed: number;
  autoConnect: boolean;
  /** consecutive failed attempts since the last stable connection */
  attempt: number;
  /** delay chosen for the current backoff, in ms */
  retryInMs: number;
  connectedAt: number | null;
  lastError: Failure | null;
}

export const linkVersion = '1';

/**
 * The MQTT connection. One mqttClient actor per attempt, invoked while in `session`:
 * leaving `session` ends that client, so the chart (not mqtt.js) owns reconnection.
 */
export const linkMachine = setup({
  types: {} as { context: LinkContext; events: LinkEvent; input: LinkInput },
  actors: { mqttClient: needsCallback<LinkEvent, { attempt: number }>('mqttClient') },
  delays: {
    retryDelay: ({ context }) => context.retryInMs,
    stable: ({ context }) => context.stableMs,
  },
  guards: {
    autoConnect: ({ context }) => context.autoConnect,
  },
  actions: {
    scheduleRetry: assign(({ context }) => {
      const attempt = context.attempt + 1;
      return { attempt, retryInMs: backoffMs(context.backoff, attempt, context.jitterSeed) };
    }),
    recordClose: assign({
      lastError: ({ context, event }) =>
        event.type === 'mqtt.closed' ? (event.error ?? { code: 'closed', message: 'connection closed by broker' }) : context.lastError,
      connectedAt: null,
    }),
    recordCrash: assign({
      lastError: ({ event }) => toFailure((event as { error?: unknown }).error, 'client_error'),
      connectedAt: null,
    }),
  },
}).createMachine({
  id: 'link',
  version: linkVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    broker: input.broker,
    backoff: input.backoff,
    stableMs: input.stableMs,
    jitterSeed: input.jitterSeed,
    autoConnect: input.autoConnect ?? true,
    attempt: 0,
    retryInMs: 0,
    connectedAt: null,
    lastError: null,
  }),
  initial: 'offline',
  on: {
    'link.disconnect': { target: '.offline', actions: assign({ autoConnect: false, attempt: 0, connectedAt: null }) },
  },
  states: {
    offline: {
      always: { guard: 'autoConnect', target: 'session' },
      on: { 'link.connect': { target: 'session', actions: assign({ autoConnect: true }) } },
    },
    session: {
      invoke: {
        src: 'mqttClient',
        id: 'mqttClient',
        input: ({ context }) => ({ attempt: context.attempt }),
        onError: { target: 'backingOff', actions: 'recordCrash' },
      },
      initial: 'connecting',
      on: {
        'mqtt.closed': { target: 'backingOff', actions: 'recordClose' },
        'link.reconnect': { target: 'session', reenter: true },
      },
      states: {
        connecting: {
          on: { 'mqtt.connected': { target: 'online', actions: assign({ connectedAt: ({ event }) => event.at }) } },
        },
        online: {
          tags: ['healthy', 'online'],
          // A broker that accepts and then drops us at once must not be retried at full speed:
          // the retry count resets only after the connection has held for a while.
          after: { stable: { actions: assign({ attempt: 0, lastError: null }) } },
        },
      },
    },
    backingOff: {
      entry: 'scheduleRetry',
      after: { retryDelay: 'session' },
      on: { 'link.reconnect': 'session', 'link.connect': 'session' },
    },
  },
});
