import { assign, sendTo, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { alertsMachine, type AlertsInput } from './alerts.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

/** One stored sample of one device (this one, or a peer's in collector mode). */
export interface MonitorSample {
  device: string;
  /** ms since the epoch */
  ts: number;
  values: Record<string, number>;
}

export interface MonitorInput {
  intervalMs: number;
  alerts: AlertsInput;
  /** delays before the history store is opened again after it failed */
  retry: BackoffPolicy;
  jitterSeed: number;
}

/** What one run of sampleHost reports: the sample itself went to the store, the outbox and /ws. */
export interface SampleOutput {
  at: number;
  values: number;
  durationMs: number;
}

/** Facts from the historyStore actor (it owns the SQLite file and its retention). */
export type HistoryEvent =
  | { type: 'history.opened'; devices: number; usedBytes: number }
  | { type: 'history.pruned'; deleted: number; usedBytes: number }
  | { type: 'history.failed'; error: Failure };

/** The host inventory was read (at start, then every few hours): when, and the parts that could not be. */
export type InventoryEvent = { type: 'inventory.read'; at: number | null; problems: string[] };

/** The collector's state as it changes (never per message). */
export type CollectorEvent = { type: 'collector.status'; state: 'waiting' | 'subscribed' | 'off'; problem: string | null };

/**
 * Every sample once it is stored, own and collected (from the sampleFeed actor). The chart
 * forwards it to its child `alerts` as `alerts.sample`: the seam where the alerts manager
 * (one alert:<rule>:<device> child per rule × device) sees every stored sample.
 */
export type SampleStoredEvent = { type: 'monitor.sample'; sample: MonitorSample };

export type MonitorEvent = HistoryEvent | CollectorEvent | SampleStoredEvent | InventoryEvent;

export interface MonitorCounters {
  samples: number;
  failures: number;
  usedBytes: number;
}

export interface MonitorContext {
  intervalMs: number;
  alerts: AlertsInput;
  retry: BackoffPolicy;
  jitterSeed: number;
  /** history store failures in a row */
  attempts: number;
  counters: MonitorCounters;
  lastSample: SampleOutput | null;
  collector: { state: CollectorEvent['state']; problem: string | null };
  /** the last inventory read: when (null: not yet, or it failed) and what could not be read */
  inventory: { at: number | null; problems: string[] };
  error: Failure | null;
  /** why monitoring is unhealthy, for /health */
  problem: string | null;
}

export const monitorVersion = '1';

const sampleInvoke = {
  src: 'sampleHost',
  id: 'sample',
  onDone: { target: 'waiting', actions: 'recordSample' },
  onError: { target: 'failing', actions: 'recordFailure' },
} as const;

/**
 * Host monitoring: opens the metric history, then samples every interval. A failed sample
 * is a state (`failing`, with the reason) that samples again after the interval; a history
 * store that fails is `broken` and is opened again after a backoff. The samples themselves
 * (data plane) go from the actors to the store, the outbox and /ws; the chart sees one
 * summary per sample.
 */
export const monitorMachine = setup({
  types: {} as { context: MonitorContext; events: MonitorEvent; input: MonitorInput },
  actors: {
    historyStore: needsCallback<HistoryEvent>('historyStore'),
    sampleHost: needs<SampleOutput>('sampleHost'),
    sampleFeed: needsCallback<SampleStoredEvent>('sampleFeed'),
    collector: needsCallback<CollectorEvent>('collector'),
    inventory: needsCallback<InventoryEvent>('inventory'),
    alerts: alertsMachine,
  },
  delays: {
    interval: ({ context }) => context.intervalMs,
    reopen: ({ context }) => backoffMs(context.retry, context.attempts, context.jitterSeed),
  },
  actions: {
    recordSample: assign(({ context, event }) => {
      const output = (event as { output?: SampleOutput }).output ?? null;
      return { lastSample: output, error: null, problem: null, counters: { ...context.counters, samples: context.counters.samples + 1 } };
    }),
    recordFailure: assign(({ context, event }) => {
      const error = toFailure((event as { error?: unknown }).error, 'sample_failed');
      return { error, problem: `sampling failed: ${error.message}`, counters: { ...context.counters, failures: context.counters.failures + 1 } };
    }),
    forwardSample: sendTo('alerts', ({ event }) => ({ type: 'alerts.sample' as const, sample: (event as SampleStoredEvent).sample })),
  },
}).createMachine({
  id: 'monitor',
  version: monitorVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    intervalMs: input.intervalMs,
    alerts: input.alerts,
    retry: input.retry,
    jitterSeed: input.jitterSeed,
    attempts: 0,
    counters: { samples: 0, failures: 0, usedBytes: 0 },
    lastSample: null,
    collector: { state: 'off', problem: null },
    inventory: { at: null, problems: [] },
    error: null,
    problem: null,
  }),
  on: {
    'collector.status': { actions: assign({ collector: ({ event }) => ({ state: event.state, problem: event.problem }) }) },
    'inventory.read': { actions: assign({ inventory: ({ event }) => ({ at: event.at, problems: event.problems }) }) },
  },
  initial: 'active',
  states: {
    active: {
      invoke: [
        {
          src: 'historyStore',
          id: 'history',
          onError: { target: 'broken', actions: assign({ error: ({ event }) => toFailure(event.error, 'history_crashed') }) },
        },
        { src: 'sampleFeed', id: 'feed', onError: { target: 'broken', actions: assign({ error: ({ event }) => toFailure(event.error, 'feed_crashed') }) } },
        {
          src: 'alerts',
          id: 'alerts',
          systemId: 'alerts',
          input: ({ context }) => context.alerts,
          // It ends only when its notifier broke: states and pending notices are on disk, and a restart restores them.
          onDone: { target: 'broken', actions: assign({ error: () => ({ code: 'alerts_ended', message: 'the alerts manager stopped' }) }) },
          onError: { target: 'broken', actions: assign({ error: ({ event }) => toFailure(event.error, 'alerts_crashed') }) },
        },
      ],
      on: {
        'monitor.sample': { actions: 'forwardSample' },
        'history.failed': { target: 'broken', actions: assign({ error: ({ event }) => event.error }) },
        'history.pruned': { actions: assign({ counters: ({ context, event }) => ({ ...context.counters, usedBytes: event.usedBytes }) }) },
      },
      initial: 'opening',
      states: {
        opening: {
          on: {
            'history.opened': {
              target: 'running',
              actions: assign({ attempts: 0, counters: ({ context, event }) => ({ ...context.counters, usedBytes: event.usedBytes }) }),
            },
          },
        },
        running: {
          type: 'parallel',
          // The host inventory, read at start and then rarely (never on the sample path); a failure is a problem it reports, not a crash.
          invoke: {
            src: 'inventory',
            id: 'inventory',
            onError: { actions: assign({ inventory: ({ event }) => ({ at: null, problems: [toFailure(event.error, 'inventory_crashed').message] }) }) },
          },
          states: {
            sampler: {
              initial: 'sampling',
              states: {
                sampling: { tags: ['healthy'], invoke: sampleInvoke },
                waiting: { tags: ['healthy'], after: { interval: 'sampling' } },
                failing: { after: { interval: 'retrying' } },
                retrying: { invoke: sampleInvoke },
              },
            },
            // Collector mode: peers' samples from MQTT, stored as they come (see collector.status).
            collector: {
              invoke: {
                src: 'collector',
                id: 'collector',
                onError: { target: '#monitor.broken', actions: assign({ error: ({ event }) => toFailure(event.error, 'collector_crashed') }) },
              },
            },
          },
        },
      },
    },
    // The history store could not open or broke (a disk error): opened again after a backoff.
    broken: {
      entry: assign({
        attempts: ({ context }) => context.attempts + 1,
        problem: ({ context }) => `history unavailable: ${context.error?.message ?? 'unknown error'}`,
      }),
      after: { reopen: 'active' },
    },
  },
});
