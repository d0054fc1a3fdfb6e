import { assign, sendTo, setup } from 'xstate';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

/** Counters the store reports (throttled): the chart sees totals, never the messages. */
export interface OutboxCounters {
  depth: number;
  bytes: number;
  full: boolean;
  enqueued: number;
  delivered: number;
  dropped: number;
  refused: number;
  /** why the disk refuses writes (full, read-only, failing), or null while it takes them */
  unwritable: string | null;
  /** messages moved to the dead letters since start */
  deadLettered: number;
  /** dead letters kept now, waiting for a retry or a drop */
  deadLetters: number;
}

/** Facts from the outboxStore actor. */
export type OutboxStoreEvent =
  | { type: 'outbox.opened'; counters: OutboxCounters }
  | { type: 'outbox.stats'; counters: OutboxCounters }
  | { type: 'outbox.failed'; error: Failure }
  | { type: 'link.up' }
  | { type: 'link.down' };

/** Commands from the API. */
export type OutboxCommand = { type: 'outbox.pause' } | { type: 'outbox.resume' };
export type OutboxEvent = OutboxStoreEvent | OutboxCommand;

/** Commands the chart gives the store actor. */
export type OutboxStoreCommand = { type: 'drain.start' } | { type: 'drain.stop' };

export interface OutboxContext {
  counters: OutboxCounters;
  linkUp: boolean;
  /** why the outbox is unhealthy, for /health */
  problem: string | null;
  error: Failure | null;
}

export const outboxVersion = '1';

export const emptyCounters: OutboxCounters = {
  depth: 0,
  bytes: 0,
  full: false,
  enqueued: 0,
  delivered: 0,
  dropped: 0,
  refused: 0,
  unwritable: null,
  deadLettered: 0,
  deadLetters: 0,
};

const describeFull = (c: OutboxCounters) => `full: ${c.depth} messages, ${c.bytes} bytes; ${c.dropped} dropped, ${c.refused} refused so far`;
const describeUnwritable = (c: OutboxCounters) => `refusing new messages, delivering the ${c.depth} it holds: ${c.unwritable}`;
const problemOf = (c: OutboxCounters) => (c.unwritable ? describeUnwritable(c) : c.full ? describeFull(c) : null);

/**
 * The durable reconnect queue's control plane. The store actor holds the messages and
 * delivers them; this chart decides when: while the link is up and nobody paused it.
 * `capacity` is a parallel fact, not a delivery state: `full` (messages are being dropped or
 * refused by the limits) or `unwritable` (the disk refuses writes, so every new message is
 * refused with the reason; what is held is still delivered, and the store probes the disk
 * until it writes again).
 */
export const outboxMachine = setup({
  types: {} as { context: OutboxContext; events: OutboxEvent },
  actors: { outboxStore: needsCallback<OutboxStoreCommand>('outboxStore') },
  guards: {
    isFull: ({ context }) => context.counters.full,
    hasRoom: ({ context }) => !context.counters.full,
    isUnwritable: ({ context }) => Boolean(context.counters.unwritable),
    isWritable: ({ context }) => !context.counters.unwritable,
    linkUp: ({ context }) => context.linkUp,
  },
  actions: {
    takeCounters: assign(({ event }) => {
      if (event.type !== 'outbox.stats' && event.type !== 'outbox.opened') return {};
      return { counters: event.counters, problem: problemOf(event.counters) };
    }),
    startDraining: sendTo('store', { type: 'drain.start' } satisfies OutboxStoreCommand),
    stopDraining: sendTo('store', { type: 'drain.stop' } satisfies OutboxStoreCommand),
  },
}).createMachine({
  id: 'outbox',
  version: outboxVersion,
  options: { maxIterations: 1000 },
  context: { counters: emptyCounters, linkUp: false, problem: null, error: null },
  invoke: {
    src: 'outboxStore',
    id: 'store',
    onError: { target: '.crashed', actions: assign({ error: ({ event }) => toFailure(event.error, 'crashed') }) },
  },
  initial: 'opening',
  on: {
    'link.up': { actions: assign({ linkUp: true }) },
    'link.down': { actions: assign({ linkUp: false }) },
    'outbox.stats': { actions: 'takeCounters' },
    'outbox.failed': { target: '.crashed', actions: assign({ error: ({ event }) => event.error }) },
  },
  states: {
    opening: {
      on: { 'outbox.opened': { target: 'open', actions: 'takeCounters' } },
    },
    open: {
      type: 'parallel',
      states: {
        delivery: {
          initial: 'holding',
          states: {
            holding: {
              always: { guard: 'linkUp', target: 'draining' },
              on: { 'outbox.pause': 'paused' },
            },
            draining: {
              entry: 'startDraining',
              exit: 'stopDraining',
              on: { 'link.down': { target: 'holding', actions: assign({ linkUp: false }) }, 'outbox.pause': 'paused' },
            },
            paused: {
              on: { 'outbox.resume': 'holding' },
            },
          },
        },
        capacity: {
          initial: 'ok',
          states: {
            ok: {
              tags: ['healthy'],
              always: [
                { guard: 'isUnwritable', target: 'unwritable' },
                { guard: 'isFull', target: 'full' },
              ],
            },
            full: {
              always: [
                { guard: 'isUnwritable', target: 'unwritable' },
                { guard: 'hasRoom', target: 'ok' },
              ],
            },
            unwritable: { always: { guard: 'isWritable', target: 'ok' } },
          },
        },
      },
    },
    // The store could not open (the disk cannot be read): the supervisor restarts the outbox.
    crashed: { type: 'final' },
  },
  output: ({ context }) => ({ error: context.error }),
});
