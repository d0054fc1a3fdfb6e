import { assign, enqueueActions, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needs } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';
import { firmwareEntryMachine, type EntryOutput, type RegistryEvent, type StoredEvent } from './firmware-entry.js';

export interface FirmwareInput {
  /** bytes of verified firmware held at most (LRU) */
  maxBytes: number;
  /** entries with a verified build at most, whatever their size */
  maxEntries: number;
  /** entries without a build (cold, or the negative cache of unknown ids) at most; they only
   * ever evict each other, never a build (default: maxEntries) */
  maxNegativeEntries?: number;
  freshnessMs: number;
  retry: BackoffPolicy;
  jitterSeed: number;
  /** outcomes of removed entries remembered */
  maxRecords?: number;
}

export interface EntryUse {
  bytes: number;
  /** logical time of the last use: the least recently used entry goes first */
  used: number;
  /** a verified build was stored: it counts against maxEntries, not maxNegativeEntries */
  built?: boolean;
  /** the digest of that build (src/ keeps the bytes of live digests only) */
  digest?: string;
}

export interface EntryRecord {
  device: string;
  outcome: 'failed' | 'evicted';
  reason: string | null;
}

export interface FirmwareContext extends FirmwareInput {
  entries: Record<string, EntryUse>;
  bytes: number;
  tick: number;
  spawned: number;
  records: EntryRecord[];
  counters: { entries: number; bytes: number; evicted: number };
  /** the registry could not be reached on the last round trip: why (null while it answers) */
  outage: Failure | null;
  /** what /health shows while degraded */
  problem: string | null;
  /** probes of the registry since the outage began (bounded: the delay stops growing) */
  probes: number;
  probeInMs: number;
}

export type FirmwareEvent =
  /** a device asked: spawn its entry if none (single flight), or let a stale one refresh */
  | { type: 'firmware.request'; device: string }
  /** the registry announced a push: refresh now */
  | { type: 'firmware.refresh'; device: string }
  /** devices served from memory since the last report, most recent last (LRU order) */
  | { type: 'firmware.touched'; devices: string[] }
  | StoredEvent
  | RegistryEvent;

export const firmwareVersion = '1';
export const entryId = (device: string) => `firmware:${device}`;
const outageOf = ({ event }: { event: RegistryEvent }) => ({ outage: event.outage });
const deviceOf = (id: string | undefined) => (id?.startsWith('firmware:') ? id.slice('firmware:'.length) : undefined);

/** An entry ended: its id and its output (done) or its error (a crash). */
type EntryEnded =
  | { type: `xstate.done.actor.${string}`; actorId?: string; output?: EntryOutput }
  | { type: `xstate.error.actor.${string}`; actorId?: string; error?: unknown };
type Ended = { actorId: string; reason: string | null };
const ended = (event: EntryEnded): Ended => ({
  actorId: event.actorId ?? '',
  reason:
    'error' in event ? (event.error === undefined ? null : toFailure(event.error).message) : 'output' in event ? (event.output?.error?.message ?? null) : null,
});

/**
 * Entry removals to keep one pool within its bounds, least recently used first, sparing
 * `keep`: the built pool (maxBytes, maxEntries) or the pool without a build
 * (maxNegativeEntries, `extra` counting the one about to be spawned). A pool only ever evicts
 * its own, so a flood of unknown ids cannot push a real build out of memory.
 */
function evictions(context: FirmwareContext, entries: Record<string, EntryUse>, pool: 'built' | 'negative', keep: string | null, extra = 0): string[] {
  const members = Object.entries(entries).filter(([, use]) => Boolean(use.built) === (pool === 'built'));
  const maxCount = pool === 'built' ? context.maxEntries : (context.maxNegativeEntries ?? context.maxEntries);
  let bytes = members.reduce((sum, [, e]) => sum + e.bytes, 0);
  let count = members.length + extra;
  const order = members.filter(([device]) => device !== keep).sort((a, b) => a[1].used - b[1].used);
  const out: string[] = [];
  for (const [device, use] of order) {
    if (bytes <= context.maxBytes && count <= maxCount) break;
    out.push(device);
    bytes -= use.bytes;
    count--;
  }
  return out;
}

/**
 * The firmware concern: one `firmware:<device>` entry per device asked for, spawned on the
 * first request (concurrent requests share it: one registry round trip). The verified bytes
 * they hold are bounded in total (maxBytes) and in number (maxEntries); entries without a
 * build (a cold fetch, or the negative cache of an unknown id) are bounded apart
 * (maxNegativeEntries) and never push a build out. The least recently used entries of a pool
 * are stopped to make room. An entry that ends (no good build) is removed and
 * its outcome recorded.
 */
export const firmwareMachine = setup({
  types: {} as { context: FirmwareContext; events: FirmwareEvent | EntryEnded; input: FirmwareInput },
  actors: {
    entry: firmwareEntryMachine,
    /** one cheap request to the registry (GET /v2/): resolves when it answers */
    probeRegistry: needs<void, void>('probeRegistry'),
  },
  delays: { probe: ({ context }) => context.probeInMs },
  actions: {
    request: enqueueActions(({ context, enqueue }, { device, type }: { device: string; type: 'firmware.request' | 'firmware.refresh' }) => {
      const tick = context.tick + 1;
      if (context.entries[device]) {
        enqueue.assign({ tick, entries: { ...context.entries, [device]: { ...context.entries[device], used: tick } } });
        enqueue.sendTo(entryId(device), { type });
        return;
      }
      const evict = evictions(context, context.entries, 'negative', null, 1);
      const entries = { ...context.entries };
      for (const d of evict) {
        delete entries[d];
        enqueue.stopChild(entryId(d));
      }
      entries[device] = { bytes: 0, used: tick };
      enqueue.spawnChild('entry', {
        id: entryId(device),
        input: { device, freshnessMs: context.freshnessMs, retry: context.retry, jitterSeed: context.jitterSeed + context.spawned },
      });
      enqueue.assign(
        withTotals(
          context,
          { tick, entries, spawned: context.spawned + 1 },
          evict.map((d) => ({ device: d, outcome: 'evicted', reason: 'cache full (least recently used)' })),
        ),
      );
    }),
    touch: assign(({ context }, { devices }: { devices: string[] }) => {
      let tick = context.tick;
      const entries = { ...context.entries };
      for (const device of devices) if (entries[device]) entries[device] = { ...entries[device], used: ++tick };
      return { tick, entries };
    }),
    stored: enqueueActions(({ context, enqueue }, { device, bytes, digest }: Omit<StoredEvent, 'type'>) => {
      if (!context.entries[device]) return;
      const entries = { ...context.entries, [device]: { ...context.entries[device], bytes, built: true, digest } };
      const evict = evictions(context, entries, 'built', device);
      for (const d of evict) {
        delete entries[d];
        enqueue.stopChild(entryId(d));
      }
      enqueue.assign(
        withTotals(
          context,
          { entries },
          evict.map((d) => ({ device: d, outcome: 'evicted', reason: 'cache full (least recently used)' })),
        ),
      );
    }),
    takeOutage: assign((_, { outage }: { outage: Failure | null }) => {
      return { outage, problem: outage ? `registry unreachable (${outage.message}); serving the last good builds` : null };
    }),
    recover: assign({ outage: null, problem: null, probes: 0, probeInMs: 0 }),
    scheduleProbe: assign(({ context }) => {
      const probes = Math.min(context.probes + 1, 20);
      return { probes, probeInMs: backoffMs(context.retry, probes, context.jitterSeed) };
    }),
    removeEntry: enqueueActions(({ context, enqueue }, { actorId, reason }: Ended) => {
      const device = deviceOf(actorId);
      if (!device || !context.entries[device]) return;
      const entries = { ...context.entries };
      delete entries[device];
      enqueue.stopChild(actorId);
      enqueue.assign(withTotals(context, { entries }, [{ device, outcome: 'failed', reason }]));
    }),
  },
  guards: {
    isEntry: (_, { actorId }: { actorId: string | undefined }) => deviceOf(actorId) !== undefined,
    outage: (_, { outage }: { outage: Failure | null }) => outage !== null,
  },
}).createMachine({
  id: 'firmware',
  version: firmwareVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    ...input,
    entries: {},
    bytes: 0,
    tick: 0,
    spawned: 0,
    records: [],
    counters: { entries: 0, bytes: 0, evicted: 0 },
    outage: null,
    problem: null,
    probes: 0,
    probeInMs: 0,
  }),
  // Entries are served and managed the same way whether the registry is up or not.
  on: {
    'firmware.request': { actions: { type: 'request', params: ({ event }) => event } },
    'firmware.refresh': { actions: { type: 'request', params: ({ event }) => event } },
    'firmware.touched': { actions: { type: 'touch', params: ({ event }) => event } },
    'firmware.stored': { actions: { type: 'stored', params: ({ event }) => event } },
    'xstate.done.actor.*': {
      guard: { type: 'isEntry', params: ({ event }) => ({ actorId: event.actorId }) },
      actions: { type: 'removeEntry', params: ({ event }) => ended(event) },
    },
    'xstate.error.actor.*': {
      guard: { type: 'isEntry', params: ({ event }) => ({ actorId: event.actorId }) },
      actions: { type: 'removeEntry', params: ({ event }) => ended(event) },
    },
  },
  initial: 'serving',
  states: {
    serving: {
      tags: ['healthy'],
      on: { 'firmware.registry': { guard: { type: 'outage', params: outageOf }, target: 'degraded', actions: { type: 'takeOutage', params: outageOf } } },
    },
    // The registry cannot be reached: nothing can refresh, the last good builds are served.
    // Probed with a backoff, so the end of the outage shows even when no device asks.
    degraded: {
      tags: ['degraded'],
      on: {
        'firmware.registry': [
          { guard: { type: 'outage', params: outageOf }, actions: { type: 'takeOutage', params: outageOf } },
          { target: 'serving', actions: 'recover' },
        ],
      },
      initial: 'waiting',
      entry: 'scheduleProbe',
      states: {
        waiting: { after: { probe: 'probing' } },
        probing: {
          invoke: {
            src: 'probeRegistry',
            onDone: { target: '#firmware.serving', actions: 'recover' },
            onError: { target: 'waiting', actions: 'scheduleProbe' },
          },
        },
      },
    },
  },
});

/** The new entries with the byte total, counters and records brought in step. */
function withTotals(
  context: FirmwareContext,
  patch: Partial<FirmwareContext> & { entries: Record<string, EntryUse> },
  removed: EntryRecord[],
): Partial<FirmwareContext> {
  const bytes = Object.values(patch.entries).reduce((sum, e) => sum + e.bytes, 0);
  const evicted = context.counters.evicted + removed.filter((r) => r.outcome === 'evicted').length;
  return {
    ...patch,
    bytes,
    records: [...context.records, ...removed].slice(-(context.maxRecords ?? 100)),
    counters: { entries: Object.keys(patch.entries).length, bytes, evicted },
  };
}
