import { describe, expect, it } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { firmwareEntryMachine, type FirmwareMeta, type Resolved } from '../../../machines/firmware-entry.js';
import { firmwareMachine } from '../../../machines/firmware.js';
import { VerifiedBlobs } from '../../../src/firmware/blobs.js';
import { sha256 } from '../../../src/firmware/registry.js';
import { FirmwareService } from '../../../src/firmware/service.js';
import { ActorChanges } from '../../../src/observe.js';

/** Each device's build: its bytes (devices may share one). */
const builds: Record<string, Buffer> = { a: Buffer.alloc(100, 1), b: Buffer.alloc(100, 2), c: Buffer.alloc(100, 3), d: Buffer.alloc(100, 3) };
const resolvedOf = (device: string): Resolved => {
  const digest = sha256(builds[device]);
  return { tag: '1.0.0', version: '1.0.0', manifestDigest: `m-${device}`, layer: { digest, size: 100, mediaType: 'application/octet-stream' } };
};

/** The real manager and entry charts; the registry and disk stand-ins put verified bytes in the blob store, as the real fetch does. */
function start(maxEntries: number) {
  const blobs = new VerifiedBlobs(10_000);
  const entry = firmwareEntryMachine.provide({
    actors: {
      loadCached: fromPromise<FirmwareMeta | null, { device: string }>(async () => null),
      resolveLatest: fromPromise<Resolved, { device: string; known: string | null }>(async ({ input }) => {
        if (!builds[input.device]) throw Object.assign(new Error('no such repository'), { code: 'NAME_UNKNOWN' });
        return resolvedOf(input.device);
      }),
      fetchAndVerify: fromPromise<FirmwareMeta, { device: string; resolved: Resolved }>(async ({ input }) => {
        const bytes = builds[input.device];
        blobs.put(input.resolved.layer.digest, bytes);
        return {
          version: '1.0.0',
          tag: '1.0.0',
          manifestDigest: input.resolved.manifestDigest,
          digest: input.resolved.layer.digest,
          size: bytes.length,
          crc32: 1,
        };
      }),
    },
  });
  const changes = new ActorChanges();
  const manager = createActor(firmwareMachine.provide({ actors: { entry } }), {
    systemId: 'firmware',
    inspect: changes.inspect,
    input: { maxBytes: 10_000, maxEntries, freshnessMs: 60_000, retry: { minMs: 1000, maxMs: 60_000 }, jitterSeed: 1 },
  });
  manager.start();
  const service = new FirmwareService(() => manager, changes, { blobs, waitMs: 5000 });
  return { manager, service, blobs, stop: () => (service.close(), manager.stop()) };
}

describe('the firmware service (requests in front of the charts)', () => {
  it('serves a verified build from the blob store by its digest, and a miss for an unknown device', async () => {
    const t = start(4);
    const hot = await t.service.get('a');
    expect(hot?.body.equals(builds.a)).toBe(true);
    expect(hot?.sha256).toBe(sha256(builds.a).slice('sha256:'.length));
    expect(await t.service.get('nope')).toBeUndefined();
    expect(t.service.stats).toEqual({ hits: 0, misses: 2 });
    expect(t.service.peek('a')).toBe(hot);
    t.stop();
  });

  it('lets go of the bytes of an evicted build, but not of one another device still serves', async () => {
    const t = start(2);
    await t.service.get('c');
    await t.service.get('d'); // the same bytes as c
    expect(t.blobs.bytes).toBe(100);
    await t.service.get('a'); // one entry too many: c (least recently used) goes
    expect(t.service.hot.has('c')).toBe(false);
    expect(t.blobs.get(sha256(builds.c))).toBeDefined(); // d still serves them
    await t.service.get('b'); // d goes: nothing holds those bytes any more
    expect(t.service.hot.has('d')).toBe(false);
    expect(t.blobs.get(sha256(builds.c))).toBeUndefined();
    expect(t.blobs.bytes).toBe(200);
    t.stop();
  });

  it('a request for a device whose entry is stopped while it waits answers at once, not after waitMs', async () => {
    const t = start(4);
    const pending = t.service.get('a');
    t.manager.stop(); // the concern stops (or restarts) under the request
    expect(await pending).toBeUndefined();
    t.service.close();
  });
});
