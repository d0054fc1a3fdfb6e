import { assign, sendParent, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needs } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

/** A verified firmware build, as the chart keeps it (the bytes stay in src/'s blob store). */
export interface FirmwareMeta {
  version: string;
  tag: string;
  manifestDigest: string;
  /** sha256 digest of the blob, "sha256:<hex>" */
  digest: string;
  size: number;
  crc32: number;
}

/** What the registry says is latest: the resolveLatest actor's output. */
export interface Resolved {
  tag: string;
  version: string;
  manifestDigest: string;
  layer: { digest: string; size: number; mediaType: string };
}

export interface EntryInput {
  device: string;
  /** how long a verified build counts as fresh before a request triggers a refresh, in ms */
  freshnessMs: number;
  /** delay before another refresh after a failed one */
  retry: BackoffPolicy;
  jitterSeed: number;
}

export interface EntryContext extends EntryInput {
  current: FirmwareMeta | null;
  /** what the registry said is latest: the input of the fetch that follows */
  resolved: Resolved | null;
  lastError: Failure | null;
  failures: number;
  retryInMs: number;
  /** a refresh was asked for while one ran: one more after it, so no push is missed */
  again: boolean;
}

export type EntryEvent = { type: 'firmware.request' } | { type: 'firmware.refresh' };

export interface EntryOutput {
  device: string;
  error: Failure | null;
}

/** Sent to the manager when a verified build is in memory: it weighs the cache by bytes. */
export interface StoredEvent {
  type: 'firmware.stored';
  device: string;
  bytes: number;
  /** the digest src/'s blob store holds the bytes under */
  digest: string;
}

/** Sent to the manager after every registry round trip: `outage` when the registry could not
 * be reached (or failed on its side), null when it answered, whatever it answered. */
export interface RegistryEvent {
  type: 'firmware.registry';
  device: string;
  outage: Failure | null;
}

/** Failures that mean the registry itself is down (no connection, a timeout, a 5xx). */
export const isOutage = (failure: Failure) => failure.code === 'unreachable' || /^HTTP_5\d\d$/.test(failure.code) || failure.code === 'UNAVAILABLE';

export const firmwareEntryVersion = '1';

/** Failures that are the registry's answer "there is no build" (the distribution spec's code for
 * an unknown repository; no eligible semver tag): trusted for freshnessMs, as a build would be. */
const NO_BUILD = ['NAME_UNKNOWN', 'no_version'];

/** resolve → fetch and verify, the same steps for a cold entry and for a refresh; a failure
 * anywhere goes to `failTarget`, an unchanged manifest straight to `doneTarget`. */
function steps(failTarget: string, doneTarget: string) {
  const failed = {
    target: failTarget,
    actions: [{ type: 'recordFailure', params: ({ event }: { event: { error: unknown } }) => ({ error: event.error }) }, 'reportFailure'],
  } as const;
  type Done<T> = { event: { output: T } };
  return {
    initial: 'resolving',
    states: {
      resolving: {
        invoke: {
          src: 'resolveLatest',
          input: ({ context }: { context: EntryContext }) => ({ device: context.device, known: context.current?.manifestDigest ?? null }),
          onDone: [
            {
              guard: { type: 'unchanged', params: ({ event }: Done<Resolved>) => ({ resolved: event.output }) },
              target: doneTarget,
              actions: ['recordSuccess', 'reportReached'],
            },
            { target: 'fetching', actions: [{ type: 'takeResolved', params: ({ event }: Done<Resolved>) => ({ resolved: event.output }) }, 'reportReached'] },
          ],
          onError: failed,
        },
      },
      // One actor fetches the blob and checks it (digest, size and, when configured, the
      // signature) before it is stored: nothing unverified is ever served or kept.
      fetching: {
        invoke: {
          src: 'fetchAndVerify',
          input: ({ context }: { context: EntryContext }) => ({ device: context.device, resolved: context.resolved! }),
          onDone: {
            target: doneTarget,
            actions: [{ type: 'takeBuild', params: ({ event }: Done<FirmwareMeta>) => ({ meta: event.output }) }, 'recordSuccess', 'announceStored'],
          },
          onError: failed,
        },
      },
    },
  } as const;
}

/**
 * One device's firmware cache entry. At start it looks in the disk cache; a cached build is
 * served at once (stale, so the first request refreshes it). A refresh resolves the latest
 * tag, fetches and verifies the blob; the previous verified build stays served throughout, and
 * a refresh that fails (registry down, bad digest, bad signature) keeps it and retries after a
 * backoff. An entry with no build is `missing` for a while (a negative cache: requests get "no
 * firmware" without asking the registry), then ends in `failed`.
 */
export const firmwareEntryMachine = setup({
  types: {} as { context: EntryContext; events: EntryEvent; input: EntryInput; output: EntryOutput },
  actors: {
    loadCached: needs<FirmwareMeta | null, { device: string }>('loadCached'),
    resolveLatest: needs<Resolved, { device: string; known: string | null }>('resolveLatest'),
    /** fetches the layer, checks it and stores it by digest: its output is the verified build */
    fetchAndVerify: needs<FirmwareMeta, { device: string; resolved: Resolved }>('fetchAndVerify'),
  },
  delays: {
    freshness: ({ context }) => context.freshnessMs,
    retry: ({ context }) => context.retryInMs,
    missing: ({ context }) => (NO_BUILD.includes(context.lastError?.code ?? '') ? context.freshnessMs : context.retryInMs),
  },
  guards: {
    cached: (_, { meta }: { meta: FirmwareMeta | null }) => meta !== null,
    unchanged: ({ context }, { resolved }: { resolved: Resolved }) => context.current !== null && resolved.manifestDigest === context.current.manifestDigest,
    hasCurrent: ({ context }) => context.current !== null,
    again: ({ context }) => context.again,
  },
  actions: {
    takeResolved: assign((_, { resolved }: { resolved: Resolved }) => ({ resolved })),
    takeBuild: assign((_, { meta }: { meta: FirmwareMeta | null }) => ({ current: meta })),
    recordSuccess: assign({ failures: 0, lastError: null, resolved: null }),
    recordFailure: assign(({ context }, { error }: { error: unknown }) => {
      const failures = context.failures + 1;
      return {
        failures,
        retryInMs: Math.min(context.freshnessMs, backoffMs(context.retry, failures, context.jitterSeed)),
        lastError: toFailure(error),
        resolved: null,
      };
    }),
    reportReached: sendParent(({ context }): RegistryEvent => ({ type: 'firmware.registry', device: context.device, outage: null })),
    reportFailure: sendParent(
      ({ context }): RegistryEvent => ({
        type: 'firmware.registry',
        device: context.device,
        outage: context.lastError && isOutage(context.lastError) ? context.lastError : null,
      }),
    ),
    announceStored: sendParent(
      ({ context }): StoredEvent => ({
        type: 'firmware.stored',
        device: context.device,
        bytes: context.current?.size ?? 0,
        digest: context.current?.digest ?? '',
      }),
    ),
  },
}).createMachine({
  id: 'firmwareEntry',
  version: firmwareEntryVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, current: null, resolved: null, lastError: null, failures: 0, retryInMs: 0, again: false }),
  // Wherever no state takes it (a cold fetch under way): remembered, so no push is missed.
  on: { 'firmware.refresh': { actions: assign({ again: true }) } },
  initial: 'empty',
  states: {
    empty: {
      invoke: {
        src: 'loadCached',
        input: ({ context }) => ({ device: context.device }),
        onDone: [
          {
            guard: { type: 'cached', params: ({ event }) => ({ meta: event.output }) },
            target: 'ready.stale',
            actions: [{ type: 'takeBuild', params: ({ event }) => ({ meta: event.output }) }, 'announceStored'],
          },
          { target: 'cold' },
        ],
        onError: 'cold',
      },
    },
    // No build yet: the first resolve → fetch and verify.
    cold: { ...steps('#firmwareEntry.missing', '#firmwareEntry.ready') },
    // No build to serve, and requests do not ask the registry again until this ends: for
    // freshnessMs when the registry said there is none, for the retry delay when it failed.
    // A push (firmware.refresh) looks again at once.
    missing: {
      tags: ['missing'],
      after: { missing: 'failed' },
      on: { 'firmware.refresh': { target: 'cold', actions: assign({ again: false }) } },
    },
    ready: {
      tags: ['serving'],
      on: { 'firmware.refresh': { target: '.refreshing', actions: assign({ again: false }) } },
      initial: 'fresh',
      states: {
        fresh: {
          always: { guard: 'again', target: 'refreshing', actions: assign({ again: false }) },
          after: { freshness: 'stale' },
        },
        // Served as is; the next request starts a refresh (stale-while-revalidate).
        stale: { on: { 'firmware.request': 'refreshing' } },
        // The last refresh failed: the verified build is still served; try again later.
        waiting: { after: { retry: 'stale' } },
        refreshing: {
          on: { 'firmware.refresh': { actions: assign({ again: true }) } },
          ...steps('#firmwareEntry.ready.waiting', '#firmwareEntry.ready.fresh'),
        },
      },
    },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ device: context.device, error: context.lastError }),
});
