import { assign, setup } from 'xstate';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type ConcernOutput, type Failure } from './shared/types.js';

/** Facts the server actor sends back. */
export type ServerEvent = { type: 'server.listening'; host: string; port: number } | { type: 'server.failed'; error: Failure };

export interface ListenerInput {
  /** what listens, for messages: "http", "embedded broker" */
  name: string;
  host: string;
  port: number;
}

export interface ListenerContext extends ListenerInput {
  error: Failure | null;
  /** set when the server could never listen: the reason the agent stops with */
  fatal: string | null;
}

export const listenerVersion = '1';

/**
 * A server that owns a listening socket: the HTTP API and the embedded MQTT broker.
 * One that cannot listen (port in use, no permission) ends in `failed` with a fatal output,
 * and the supervisor stops the agent with that reason; a server that breaks later ends in
 * `crashed`, which the supervisor answers with a restart.
 */
export const listenerMachine = setup({
  types: {} as { context: ListenerContext; events: ServerEvent; input: ListenerInput; output: ConcernOutput },
  actors: { server: needsCallback<ServerEvent, ListenerInput>('server') },
}).createMachine({
  id: 'listener',
  version: listenerVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, error: null, fatal: null }),
  invoke: {
    src: 'server',
    id: 'server',
    input: ({ context }) => ({ name: context.name, host: context.host, port: context.port }),
    onError: { target: '.crashed', actions: assign({ error: ({ event }) => toFailure(event.error, 'crashed') }) },
  },
  initial: 'starting',
  states: {
    starting: {
      on: {
        'server.listening': { target: 'listening', actions: assign({ host: ({ event }) => event.host, port: ({ event }) => event.port }) },
        'server.failed': { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    listening: {
      tags: ['healthy'],
      on: { 'server.failed': { target: 'crashed', actions: assign({ error: ({ event }) => event.error }) } },
    },
    failed: {
      type: 'final',
      entry: assign({
        fatal: ({ context }) => `${context.name}: cannot listen on ${context.host}:${context.port}: ${context.error?.message ?? 'unknown error'}`,
      }),
    },
    crashed: { type: 'final' },
  },
  output: ({ context }) => (context.fatal ? { fatal: context.fatal } : {}),
});
