import { describe, expect, it } from 'vitest';
import { transition, type AnyEventObject, type EventFromLogic, type SnapshotFrom } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { deadEnds } from '../../support/graph.js';
import { firmwareEntryMachine, type FirmwareMeta, type Resolved } from '../../../machines/firmware-entry.js';

// The chart tells its manager with sendParent, which needs a parent: for the walk over the pure
// transition function the three reports are named no-ops, and each step's actions are read.
const entry = firmwareEntryMachine.provide({ actions: { reportReached: () => {}, reportFailure: () => {}, announceStored: () => {} } });
type Snap = SnapshotFrom<typeof entry>;
/** XState's own events (actor ends, delays) are not in the chart's event type; the walk sends them too. */
type Ev = EventFromLogic<typeof entry>;

const resolved = (version: string): Resolved => ({
  tag: version,
  version,
  manifestDigest: `sha256:m${version}`,
  layer: { digest: `sha256:l${version}`, size: 100, mediaType: 'application/octet-stream' },
});
const meta = (r: Resolved): FirmwareMeta => ({ version: r.version, tag: r.tag, manifestDigest: r.manifestDigest, digest: r.layer.digest, size: 100, crc32: 7 });
const failure = (code: string) => Object.assign(new Error(code), { code });

/** What each actor may come back with, by its name; `known` is the build the entry has. */
function outcomesOf(src: string, state: Snap): Array<{ output?: unknown; error?: unknown }> {
  const known = state.context.current;
  const next = state.context.resolved ?? resolved(known?.version === '1.0.0' ? '2.0.0' : '1.0.0');
  switch (src) {
    case 'loadCached':
      return [{ output: null }, { output: meta(resolved('1.0.0')) }, { error: failure('EIO') }];
    case 'resolveLatest':
      return [{ output: next }, ...(known ? [{ output: resolved(known.version) }] : []), { error: failure('unreachable') }, { error: failure('NAME_UNKNOWN') }];
    case 'fetchAndVerify':
      return [{ output: meta(next) }, { error: failure('HTTP_503') }, { error: failure('digest_mismatch') }];
    default:
      return [];
  }
}

/** Everything an entry can see in a state: its actors' ends, its delays, requests and pushes. */
function eventsIn(state: Snap): Ev[] {
  if (state.status !== 'active') return [];
  const events: AnyEventObject[] = [{ type: 'firmware.request' }, { type: 'firmware.refresh' }];
  for (const [id, ref] of Object.entries(state.children)) {
    for (const o of outcomesOf(String(ref?.src), state)) {
      events.push(
        'error' in o ? { type: `xstate.error.actor.${id}`, error: o.error, actorId: id } : { type: `xstate.done.actor.${id}`, output: o.output, actorId: id },
      );
    }
  }
  if (state.matches('missing')) events.push({ type: 'xstate.after.missing.firmwareEntry.missing' });
  if (state.matches({ ready: 'fresh' })) events.push({ type: 'xstate.after.freshness.firmwareEntry.ready.fresh' });
  if (state.matches({ ready: 'waiting' })) events.push({ type: 'xstate.after.retry.firmwareEntry.ready.waiting' });
  return events as Ev[];
}

const REGISTRY_ACTORS = ['resolveLatest', 'fetchAndVerify'];
const inSteps = (s: Snap) => Object.values(s.children).some((ref) => REGISTRY_ACTORS.includes(String(ref?.src)));
const srcOf = (state: Snap, event: Ev) => {
  const id = /^xstate\.(?:done|error)\.actor\.(.+)$/.exec(event.type)?.[1];
  return id ? String(state.children[id]?.src) : undefined;
};

// Keep the walk finite: the failure count is capped, delays' lengths left out.
const serializeState = (s: Snap) =>
  JSON.stringify([
    s.value,
    s.context.current?.version ?? null,
    s.context.resolved?.version ?? null,
    s.context.again,
    Math.min(s.context.failures, 2),
    s.context.lastError?.code ?? null,
  ]);

const input = { device: 'esp32', freshnessMs: 60_000, retry: { minMs: 1000, maxMs: 30_000 }, jitterSeed: 3 };

describe('firmware entry, every reachable state', () => {
  const paths = getShortestPaths(entry, { input, events: eventsIn, serializeState, limit: 50_000 });
  const states = paths.map((p) => p.state);

  it('reaches cold, missing, failed and each state of ready', () => {
    const values = new Set(states.map((s) => JSON.stringify(s.value)));
    for (const v of ['"missing"', '"failed"', '{"ready":"fresh"}', '{"ready":"stale"}', '{"ready":"waiting"}']) expect(values).toContain(v);
    expect([...values].some((v) => v.includes('"cold"'))).toBe(true);
    expect([...values].some((v) => v.includes('"refreshing"'))).toBe(true);
  });

  it('every registry round trip ends in exactly one terminal report: stored, unchanged or failed', () => {
    for (const state of states.filter(inSteps)) {
      for (const event of eventsIn(state)) {
        const src = srcOf(state, event);
        if (!src || !REGISTRY_ACTORS.includes(src)) continue;
        const [next, actions] = transition(entry, state, event);
        const count = (t: string) => actions.filter((a) => a.type === t).length;
        const failed = event.type.startsWith('xstate.error');
        // every answer of the registry is told to the manager once: reached or failed
        expect(count('reportReached') + count('reportFailure')).toBe(failed || src === 'resolveLatest' ? 1 : 0);
        const unchanged = src === 'resolveLatest' && !failed && (event as AnyEventObject).output.manifestDigest === state.context.current?.manifestDigest;
        const ends = failed || unchanged || src === 'fetchAndVerify';
        expect(count('announceStored') + count('reportFailure') + (unchanged ? 1 : 0), `${JSON.stringify(state.value)} ${event.type}`).toBe(ends ? 1 : 0);
        if (!ends) expect(inSteps(next)).toBe(true);
      }
    }
  });

  it('a verified build is never lost: once there, it stays until a newer one is verified', () => {
    for (const state of states) {
      for (const event of eventsIn(state)) {
        const [next] = transition(entry, state, event);
        if (state.context.current) expect(next.context.current).not.toBeNull();
        if (next.context.current !== state.context.current) expect(['fetchAndVerify', 'loadCached']).toContain(srcOf(state, event));
      }
    }
  });

  it('serves exactly when it has a verified build; an entry that ends says why', () => {
    for (const state of states) {
      if (state.hasTag('serving')) expect(state.context.current).not.toBeNull();
      if (state.status === 'done') expect(state.output?.error).not.toBeNull();
    }
  });

  it('no state is a dead end: every one can still come to serve a build or to end', () => {
    const stuck = deadEnds(entry, states, eventsIn, serializeState, (s) => s.hasTag('serving') || s.status === 'done');
    expect(stuck.map((s) => s.value)).toEqual([]);
  });
});
