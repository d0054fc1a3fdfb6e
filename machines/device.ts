import { assign, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

export interface DeviceInput {
  id: string;
  path: string;
  profile: string;
  retry: BackoffPolicy;
  jitterSeed: number;
}

/** What the port actors are told: which device, where, with which profile. */
export interface PortRef {
  id: string;
  path: string;
  profile: string;
}

/** Facts from the stream actor, which owns the open port and its parser (the data plane). */
export type StreamEvent =
  | { type: 'device.lost'; error?: Failure }
  | { type: 'device.garbage' }
  | { type: 'device.recovered' };

export type DeviceEvent = StreamEvent | { type: 'device.detach' };

/** The state names a device is announced with on `.../state` and shown in the API. */
export type DeviceStateName = 'detected' | 'opening' | 'streaming' | 'failing' | 'reconnecting' | 'gone';

export interface DeviceContext extends DeviceInput {
  attempts: number;
  reconnects: number;
  retryInMs: number;
  lastError: Failure | null;
}

export interface DeviceOutput {
  id: string;
  profile: string;
  path: string;
  reconnects: number;
  lastError: Failure | null;
}

export const deviceVersion = '1';

const announce = (state: DeviceStateName) => ({ type: 'announce', params: { state } }) as const;

/**
 * One serial peripheral: detected → opening → streaming ⇄ reconnecting → gone. A port that
 * cannot be opened, or closes under us, is retried with capped, jittered backoff; a device
 * that sends only malformed frames is `failing` (still open, still counted), and returns to
 * `streaming` at its first good frame. `device.detach` (unplugged, or its profile went away)
 * ends it from anywhere; leaving `open` stops the stream actor, which closes the port at once.
 * Each state's entry runs `announce`, which src/ provides (the retained `.../state` message).
 */
export const deviceMachine = setup({
  types: {} as {
    context: DeviceContext;
    events: DeviceEvent;
    input: DeviceInput;
    output: DeviceOutput;
  },
  actors: {
    openPort: needs<void, PortRef>('openPort'),
    stream: needsCallback<StreamEvent, PortRef>('stream'),
  },
  actions: {
    announce: (_, _params: { state: DeviceStateName }) => {},
    scheduleRetry: assign(({ context, event }) => {
      const attempts = context.attempts + 1;
      const error = (event as { error?: unknown }).error;
      return {
        attempts,
        retryInMs: backoffMs(context.retry, attempts, context.jitterSeed),
        lastError: error === undefined ? context.lastError : toFailure(error, 'io'),
      };
    }),
  },
  delays: { retry: ({ context }) => context.retryInMs },
}).createMachine({
  id: 'device',
  version: deviceVersion,
  context: ({ input }) => ({ ...input, attempts: 0, reconnects: 0, retryInMs: 0, lastError: null }),
  initial: 'detected',
  on: { 'device.detach': '.gone' },
  states: {
    detected: { entry: announce('detected'), always: 'opening' },
    opening: {
      tags: ['healthy'],
      entry: announce('opening'),
      invoke: {
        src: 'openPort',
        input: ({ context }) => ({ id: context.id, path: context.path, profile: context.profile }),
        onDone: { target: 'open', actions: assign({ attempts: 0 }) },
        onError: { target: 'reconnecting', actions: 'scheduleRetry' },
      },
    },
    open: {
      invoke: { src: 'stream', input: ({ context }) => ({ id: context.id, path: context.path, profile: context.profile }), onError: { target: 'reconnecting', actions: 'scheduleRetry' } },
      on: { 'device.lost': { target: 'reconnecting', actions: 'scheduleRetry' } },
      initial: 'streaming',
      states: {
        streaming: { tags: ['healthy'], entry: announce('streaming'), on: { 'device.garbage': 'failing' } },
        failing: { entry: announce('failing'), on: { 'device.recovered': 'streaming' } },
      },
    },
    reconnecting: {
      entry: [assign({ reconnects: ({ context }) => context.reconnects + 1 }), announce('reconnecting')],
      after: { retry: 'opening' },
    },
    gone: { type: 'final', entry: announce('gone') },
  },
  output: ({ context }) => ({ id: context.id, profile: context.profile, path: context.path, reconnects: context.reconnects, lastError: context.lastError }),
});

/** The state name of a device snapshot value ({ open: 'streaming' } → 'streaming'). */
export function deviceStateName(value: unknown): DeviceStateName {
  if (typeof value === 'string') return value as DeviceStateName;
  if (value && typeof value === 'object' && 'open' in value) return (value as { open: DeviceStateName }).open;
  return 'detected';
}
