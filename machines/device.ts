import { assign, emit, enqueueActions, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

export interface DeviceInput {
  id: string;
  path: string;
  profile: string;
  retry: BackoffPolicy;
  jitterSeed: number;
  /** which spawn of this device it is (the manager's count), handed back in the output */
  spawn?: number;
}

/** What the port actor is told: which device, where, with which profile. */
export interface PortRef {
  id: string;
  path: string;
  profile: string;
}

/**
 * Why a write to a device was refused: a fixed set of codes (API, MQTT and /ws answers).
 * The chart gives `not_open` and `busy`; the rest come from src/ (the profile's allowlist,
 * the port actor's rate limit and the write itself).
 */
export const writeRefusals = [
  'unavailable',
  'unknown_device',
  'not_open',
  'not_writable',
  'bad_command',
  'not_allowed',
  'too_large',
  'busy',
  'rate_limited',
  'write_failed',
  'port_closed',
  'timeout',
] as const;
export type WriteRefusal = (typeof writeRefusals)[number];

/** The answer to one write: written to the port (drained), or refused with a reason. */
export type WriteOutcome = { requestId: string; accepted: true; bytes: number } | { requestId: string; accepted: false; reason: WriteRefusal; message: string };

/** Facts from the port actor, which owns the open port, its parser and its writes. */
export type PortEvent =
  | { type: 'port.opened' }
  | { type: 'device.lost'; error?: Failure }
  | { type: 'device.garbage' }
  | { type: 'device.recovered' }
  | ({ type: 'port.written' } & WriteOutcome);

/** What the chart tells the port actor. */
export type PortCommand = { type: 'port.write'; requestId: string; data: string };

/** A write request: `data` is the exact text for the port (line ending included). */
export type DeviceWrite = { type: 'device.write'; requestId: string; data: string };

export type DeviceEvent = PortEvent | DeviceWrite | { type: 'device.detach' };

/** Emitted once per `device.write`: src/ waits for it (actor.on('device.write.result')). */
export type DeviceEmitted = { type: 'device.write.result' } & WriteOutcome;

/** The state names a device is announced with on `.../state` and shown in the API; `stopped`
 * is announced by src/ when the agent stops with the device still present. */
export type DeviceStateName = 'detected' | 'opening' | 'streaming' | 'failing' | 'reconnecting' | 'gone' | 'stopped';

export interface DeviceContext extends DeviceInput {
  attempts: number;
  reconnects: number;
  retryInMs: number;
  lastError: Failure | null;
  /** the request id of the write the port is doing now (one at a time) */
  writing: string | null;
}

export interface DeviceOutput {
  id: string;
  spawn?: number;
  profile: string;
  path: string;
  reconnects: number;
  lastError: Failure | null;
}

export const deviceVersion = '2';

const refusal = (requestId: string, reason: WriteRefusal, message: string): DeviceEmitted => ({
  type: 'device.write.result',
  requestId,
  accepted: false,
  reason,
  message,
});

/**
 * One serial peripheral: detected → connected (opening → open: streaming ⇄ failing) ⇄
 * reconnecting → gone. One `port` actor opens the port, streams from it and writes to it, so
 * the open port has a single owner; leaving `connected` stops it, which closes the port at
 * once. A port that cannot be opened, or closes under us, is retried with capped, jittered
 * backoff; a device that sends only malformed frames is `failing` (still open) until its
 * next good frame. Writes go to the port actor one at a time while it is open and are
 * refused otherwise (never queued); each gets one `device.write.result`. `device.detach`
 * ends the device from anywhere. The chart announces nothing itself: src/ follows its
 * snapshots and publishes the retained `.../state` message on every change.
 */
export const deviceMachine = setup({
  types: {} as {
    context: DeviceContext;
    events: DeviceEvent;
    input: DeviceInput;
    output: DeviceOutput;
    emitted: DeviceEmitted;
  },
  actors: {
    port: needsCallback<PortCommand, PortRef>('port'),
  },
  actions: {
    scheduleRetry: assign(({ context }, { error }: { error: unknown }) => {
      const attempts = context.attempts + 1;
      return {
        attempts,
        retryInMs: backoffMs(context.retry, attempts, context.jitterSeed),
        lastError: error === undefined ? context.lastError : toFailure(error, 'io'),
      };
    }),
    refuseNotOpen: emit((_, { requestId }: { requestId: string }) => refusal(requestId, 'not_open', 'the port is not open')),
    write: enqueueActions(({ enqueue, context }, { requestId, data }: Omit<DeviceWrite, 'type'>) => {
      if (context.writing !== null) return void enqueue.emit(refusal(requestId, 'busy', 'a write to this port is in progress'));
      enqueue.assign({ writing: requestId });
      enqueue.sendTo('port', { type: 'port.write', requestId, data } satisfies PortCommand);
    }),
    written: enqueueActions(({ enqueue, context }, outcome: WriteOutcome) => {
      if (outcome.requestId === context.writing) enqueue.assign({ writing: null });
      enqueue.emit({ type: 'device.write.result', ...outcome });
    }),
    /** The port closed with a write in flight: its requester hears so now. */
    abandonWrite: enqueueActions(({ enqueue, context }) => {
      if (context.writing === null) return;
      enqueue.emit(refusal(context.writing, 'port_closed', 'the port closed before the write finished'));
      enqueue.assign({ writing: null });
    }),
  },
  delays: { retry: ({ context }) => context.retryInMs },
}).createMachine({
  id: 'device',
  version: deviceVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, attempts: 0, reconnects: 0, retryInMs: 0, lastError: null, writing: null }),
  initial: 'detected',
  on: { 'device.detach': '.gone', 'device.write': { actions: { type: 'refuseNotOpen', params: ({ event }) => event } } },
  states: {
    detected: { always: 'connected' },
    connected: {
      invoke: {
        src: 'port',
        id: 'port',
        input: ({ context }) => ({ id: context.id, path: context.path, profile: context.profile }),
        onError: { target: 'reconnecting', actions: { type: 'scheduleRetry', params: ({ event }) => ({ error: event.error }) } },
      },
      on: { 'device.lost': { target: 'reconnecting', actions: { type: 'scheduleRetry', params: ({ event }) => ({ error: event.error }) } } },
      initial: 'opening',
      states: {
        opening: {
          tags: ['healthy'],
          on: { 'port.opened': { target: 'open', actions: assign({ attempts: 0 }) } },
        },
        open: {
          exit: 'abandonWrite',
          on: {
            'device.write': { actions: { type: 'write', params: ({ event }) => event } },
            'port.written': { actions: { type: 'written', params: ({ event: { type: _type, ...outcome } }) => outcome } },
          },
          initial: 'streaming',
          states: {
            streaming: { tags: ['healthy'], on: { 'device.garbage': 'failing' } },
            failing: { on: { 'device.recovered': 'streaming' } },
          },
        },
      },
    },
    reconnecting: {
      entry: assign({ reconnects: ({ context }) => context.reconnects + 1 }),
      after: { retry: 'connected' },
    },
    gone: { type: 'final' },
  },
  output: ({ context }) => ({
    id: context.id,
    spawn: context.spawn,
    profile: context.profile,
    path: context.path,
    reconnects: context.reconnects,
    lastError: context.lastError,
  }),
});

/** The state name of a device snapshot value ({ connected: { open: 'streaming' } } → 'streaming'). */
export function deviceStateName(value: unknown): DeviceStateName {
  let leaf = value;
  while (leaf && typeof leaf === 'object') leaf = Object.values(leaf)[0];
  return typeof leaf === 'string' ? (leaf as DeviceStateName) : 'detected';
}
