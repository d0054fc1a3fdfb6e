import { describe, expect, it } from 'vitest';
import { createActor, createMachine, SimulatedClock, type SnapshotFrom } from 'xstate';
import { firmwareEntryMachine, type FirmwareMeta, type Resolved } from '../../machines/firmware-entry.js';
import { flush, advance } from '../support/clock.js';
import { fakePromise } from '../support/fakes.js';

const resolved = (version: string, manifestDigest = `sha256:m${version}`): Resolved => ({
  tag: version,
  version,
  manifestDigest,
  layer: { digest: `sha256:l${version}`, size: 100, mediaType: 'application/octet-stream' },
});
const meta = (r: Resolved): FirmwareMeta => ({ version: r.version, tag: r.tag, manifestDigest: r.manifestDigest, digest: r.layer.digest, size: 100, crc32: 7 });

/** The entry under a stand-in parent that records what it is told (the manager's `firmware.stored`). */
function start(freshnessMs = 60_000) {
  const clock = new SimulatedClock();
  const load = fakePromise<FirmwareMeta | null, { device: string }>();
  const resolve = fakePromise<Resolved, { device: string; known: string | null }>();
  const fetch = fakePromise<FirmwareMeta>();
  const stored: unknown[] = [];
  const entry = firmwareEntryMachine.provide({ actors: { loadCached: load.logic, resolveLatest: resolve.logic, fetchAndVerify: fetch.logic } });
  const parent = createMachine({
    invoke: { src: entry, id: 'firmware:esp32', input: { device: 'esp32', freshnessMs, retry: { minMs: 1000, maxMs: 30_000 }, jitterSeed: 3 } },
    on: { 'firmware.stored': { actions: ({ event }) => stored.push(event) } },
  });
  const actor = createActor(parent, { clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const child = () => actor.getSnapshot().children['firmware:esp32']!;
  const snap = () => child().getSnapshot() as SnapshotFrom<typeof firmwareEntryMachine>;
  const settle = async () => {
    for (let i = 0; i < 5; i++) await flush();
  };
  /** the resolve → fetch and verify under way finds r */
  const build = async (r: Resolved) => {
    resolve.resolve(r);
    await settle();
    fetch.resolve(meta(r));
    await settle();
  };
  /** cold: nothing cached, then r is built */
  const coldFetch = async (r: Resolved) => {
    load.resolve(null);
    await settle();
    await build(r);
  };
  /** cold: nothing cached, and the registry's look fails with this code */
  const coldFails = async (code: string, message: string) => {
    load.resolve(null);
    await settle();
    resolve.reject(Object.assign(new Error(message), { code }));
    await settle();
  };
  return { actor, clock, load, resolve, fetch, stored, child, snap, settle, build, coldFetch, coldFails, errors };
}

describe('firmware entry machine', () => {
  it('goes empty → cold (resolving → fetching, verified there) → ready.fresh, and tells the manager its size and digest', async () => {
    const t = start();
    expect(t.snap().value).toBe('empty');
    t.load.resolve(null);
    await t.settle();
    expect(t.snap().value).toEqual({ cold: 'resolving' });
    expect(t.resolve.calls).toBe(1);
    t.resolve.resolve(resolved('1.0.0'));
    await t.settle();
    expect(t.snap().value).toEqual({ cold: 'fetching' });
    expect(t.snap().context.current).toBeNull(); // nothing served before the fetch has verified it
    t.fetch.resolve(meta(resolved('1.0.0')));
    await t.settle();
    expect(t.snap().value).toEqual({ ready: 'fresh' });
    expect(t.snap().hasTag('serving')).toBe(true);
    expect(t.snap().context.current?.version).toBe('1.0.0');
    expect(t.stored).toEqual([{ type: 'firmware.stored', device: 'esp32', bytes: 100, digest: 'sha256:l1.0.0' }]);
  });

  it('serves a build from the disk cache at once, as stale: the first request refreshes it', async () => {
    const t = start();
    t.load.resolve(meta(resolved('0.9.0')));
    await t.settle();
    expect(t.snap().value).toEqual({ ready: 'stale' });
    expect(t.snap().context.current?.version).toBe('0.9.0');
    expect(t.resolve.calls).toBe(0);
    t.child().send({ type: 'firmware.request' });
    await t.settle();
    expect(t.snap().value).toEqual({ ready: { refreshing: 'resolving' } });
    expect(t.resolve.calls).toBe(1);
  });

  it('asks the registry nothing while fresh, and becomes stale after the freshness bound', async () => {
    const t = start(60_000);
    await t.coldFetch(resolved('1.0.0'));
    t.child().send({ type: 'firmware.request' });
    await advance(t.clock, 59_000);
    expect(t.snap().value).toEqual({ ready: 'fresh' });
    expect(t.resolve.calls).toBe(0);
    await advance(t.clock, 1_000);
    expect(t.snap().value).toEqual({ ready: 'stale' });
  });

  it('an unchanged manifest digest on refresh skips the download', async () => {
    const t = start(1000);
    await t.coldFetch(resolved('1.0.0'));
    t.child().send({ type: 'firmware.refresh' });
    await t.settle();
    t.resolve.resolve(resolved('1.0.0'));
    await t.settle();
    expect(t.snap().value).toEqual({ ready: 'fresh' });
    expect(t.fetch.calls).toBe(0);
  });

  it('a failed refresh (registry down, bad digest) keeps the last good build, then retries after a backoff', async () => {
    const t = start(60_000);
    await t.coldFetch(resolved('1.0.0'));
    t.child().send({ type: 'firmware.refresh' });
    await t.settle();
    t.resolve.resolve(resolved('1.1.0'));
    await t.settle();
    t.fetch.reject(Object.assign(new Error('blob digest does not match'), { code: 'digest_mismatch' }));
    await t.settle();
    expect(t.snap().value).toEqual({ ready: 'waiting' });
    expect(t.snap().context.current?.version).toBe('1.0.0');
    expect(t.snap().context.lastError).toEqual({ code: 'digest_mismatch', message: 'blob digest does not match' });
    expect(t.snap().hasTag('serving')).toBe(true);
    const delay = t.snap().context.retryInMs;
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1000);
    await advance(t.clock, delay);
    expect(t.snap().value).toEqual({ ready: 'stale' });
    t.child().send({ type: 'firmware.request' });
    await t.settle();
    t.resolve.reject(new Error('ECONNREFUSED'));
    await t.settle();
    expect(t.snap().context.failures).toBe(2);
    expect(t.snap().context.current?.version).toBe('1.0.0');
  });

  it('an entry the registry has no build for is missing for freshnessMs (requests ask nothing), then ends in failed with the reason', async () => {
    const t = start();
    await t.coldFails('no_version', 'no eligible semver tag');
    expect(t.snap().value).toBe('missing');
    expect(t.snap().hasTag('missing')).toBe(true);
    for (let i = 0; i < 5; i++) t.child().send({ type: 'firmware.request' });
    await advance(t.clock, 59_000);
    expect(t.resolve.calls).toBe(0); // no resolve asked while missing
    expect(t.snap().value).toBe('missing');
    await advance(t.clock, 1_000);
    expect(t.snap().status).toBe('done');
    expect(t.snap().value).toBe('failed');
    expect(t.snap().output).toEqual({ device: 'esp32', error: { code: 'no_version', message: 'no eligible semver tag' } });
  });

  it('a registry that failed (not an answer) keeps an entry missing only for the retry delay', async () => {
    const t = start();
    await t.coldFails('unreachable', 'connect ECONNREFUSED');
    expect(t.snap().value).toBe('missing');
    await advance(t.clock, 2_000); // the first retry delay: 1 s, jittered
    expect(t.snap().value).toBe('failed');
  });

  it('a push while missing looks again at once', async () => {
    const t = start();
    await t.coldFails('NAME_UNKNOWN', 'repository name not known to registry');
    expect(t.snap().value).toBe('missing');
    t.child().send({ type: 'firmware.refresh' });
    await t.settle();
    expect(t.snap().value).toEqual({ cold: 'resolving' });
    expect(t.resolve.calls).toBe(1);
    await t.build(resolved('1.0.0'));
    expect(t.snap().value).toEqual({ ready: 'fresh' });
  });

  it('a webhook during a refresh is not lost: one more refresh follows', async () => {
    const t = start();
    await t.coldFetch(resolved('1.0.0'));
    t.child().send({ type: 'firmware.refresh' });
    await t.settle();
    expect(t.snap().value).toEqual({ ready: { refreshing: 'resolving' } });
    t.child().send({ type: 'firmware.refresh' }); // a second push while the first is resolved
    await t.build(resolved('1.1.0'));
    expect(t.snap().value).toEqual({ ready: { refreshing: 'resolving' } });
    expect(t.resolve.calls).toBe(1);
    await t.build(resolved('1.2.0'));
    expect(t.snap().value).toEqual({ ready: 'fresh' });
    expect(t.snap().context.current?.version).toBe('1.2.0');
    expect(t.errors).toEqual([]);
  });

  it('a webhook while the cold fetch runs refreshes once the first build is in', async () => {
    const t = start();
    t.load.resolve(null);
    await t.settle();
    t.child().send({ type: 'firmware.refresh' });
    t.resolve.resolve(resolved('1.0.0'));
    await t.settle();
    t.fetch.resolve(meta(resolved('1.0.0')));
    await t.settle();
    expect(t.snap().value).toEqual({ ready: { refreshing: 'resolving' } });
  });
});
