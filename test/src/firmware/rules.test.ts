import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isValidDeviceId } from '../../../src/firmware/device-id.js';
import { DiskCache } from '../../../src/firmware/disk-cache.js';
import { checkHarborPayload, deviceOfPush } from '../../../src/firmware/harbor.js';
import { etagMatches, parseRange } from '../../../src/firmware/range.js';
import { sha256 } from '../../../src/firmware/registry.js';
import { latestTag, parseVersion } from '../../../src/firmware/semver.js';
import { harborPush } from '../../support/firmware.js';

const otaflux = { allowPrerelease: true, allowVPrefix: false };

describe("latest tag (OtaFlux's strict semver rules)", () => {
  it('orders numerically, never trusting the registry order, and ignores what is not strict semver', () => {
    expect(latestTag(['1.1.0', 'latest', '1.0.0', '0.1.0'], otaflux)?.tag).toBe('1.1.0');
    expect(latestTag(['1.9.0', '1.10.0', '1.2'], otaflux)?.tag).toBe('1.10.0');
    for (const tag of ['latest', 'dev', '1.11', '02.0.0', 'v1.2.3', '1.0.0.0', '1.0.01', '1.0.0-01']) expect(parseVersion(tag), tag).toBeUndefined();
    expect(latestTag(['latest', 'v1.0.0'], otaflux)).toBeUndefined();
  });

  it('pre-releases count by default (OtaFlux), and lose to their release; a switch excludes them', () => {
    expect(latestTag(['1.0.0', '1.1.0-rc.1'], otaflux)?.tag).toBe('1.1.0-rc.1');
    expect(latestTag(['1.1.0-rc.1', '1.1.0'], otaflux)?.tag).toBe('1.1.0');
    expect(latestTag(['1.1.0-rc.2', '1.1.0-rc.10', '1.1.0-beta'], otaflux)?.tag).toBe('1.1.0-rc.10');
    expect(latestTag(['1.0.0-alpha', '1.0.0-alpha.1'], otaflux)?.tag).toBe('1.0.0-alpha.1');
    expect(latestTag(['1.0.0', '1.1.0-rc.1'], { ...otaflux, allowPrerelease: false })?.tag).toBe('1.0.0');
  });

  it('v-prefixed tags count only with the switch, and report the version without the v', () => {
    expect(latestTag(['v2.0.0', '1.0.0'], { ...otaflux, allowVPrefix: true })).toEqual({ tag: 'v2.0.0', version: '2.0.0' });
    expect(latestTag(['v2.0.0', '2.0.0'], { ...otaflux, allowVPrefix: true })?.tag).toBe('2.0.0');
  });
});

describe('device ids', () => {
  it('accept one OCI repository path component only', () => {
    for (const ok of ['esp32', 'esp32-kitchen', 'a.b', 'a__b', 'a--b', 'x'.repeat(128)]) expect(isValidDeviceId(ok), ok).toBe(true);
    for (const bad of ['', 'ESP32', 'a/b', '..', 'a..b', '-a', 'a-', '_a', 'a b', 'a%2f', 'x'.repeat(129), 'a___b'])
      expect(isValidDeviceId(bad), bad).toBe(false);
  });
});

describe('ranges', () => {
  it('clamp an end past the image (ESP-IDF), take suffixes and open ends, and refuse a start past the end', () => {
    expect(parseRange('bytes=0-0', 100)).toEqual({ start: 0, end: 0 });
    expect(parseRange('bytes=90-100', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=10-', 100)).toEqual({ start: 10, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-1', 100)).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
    expect(etagMatches('"a", W/"b"', '"b"')).toBe(true);
    expect(etagMatches('*', '"b"')).toBe(true);
    expect(etagMatches('"c"', '"b"')).toBe(false);
  });
});

describe('Harbor webhook payloads', () => {
  it('take a full PUSH_ARTIFACT, refuse one with a missing field, and let other kinds through as ignored', () => {
    expect(checkHarborPayload(harborPush('fw', 'esp32', '1.0.0'))).toMatchObject({ kind: 'push', repoFullName: 'fw/esp32', name: 'esp32', tags: ['1.0.0'] });
    const missing = harborPush('fw', 'esp32', '1.0.0') as any;
    delete missing.event_data.repository.date_created;
    expect(checkHarborPayload(missing)).toMatchObject({ kind: 'invalid' });
    expect(checkHarborPayload({ type: 'DELETE_ARTIFACT' })).toEqual({ kind: 'ignored', type: 'DELETE_ARTIFACT' });
    expect(checkHarborPayload([1])).toMatchObject({ kind: 'invalid' });
    expect(checkHarborPayload({ ...harborPush('fw', 'e', '1'), occur_at: '1' })).toMatchObject({ kind: 'invalid' });
  });

  it('map the repository to a device under the prefix, nested prefixes included', () => {
    expect(deviceOfPush({ repoFullName: 'fw/esp32', name: 'esp32' }, 'fw')).toBe('esp32');
    expect(deviceOfPush({ repoFullName: 'proj/fw/esp32', name: 'fw/esp32' }, 'proj/fw/')).toBe('esp32');
    expect(deviceOfPush({ repoFullName: 'other/esp32', name: 'esp32' }, 'fw')).toBeUndefined();
    expect(deviceOfPush({ repoFullName: 'fw/esp32', name: 'esp32' }, '')).toBe('esp32');
  });
});

describe('disk cache', () => {
  const meta = (bytes: Buffer, version: string) => ({
    version,
    tag: version,
    manifestDigest: `sha256:${'0'.repeat(64)}`,
    digest: sha256(bytes),
    size: bytes.length,
    crc32: 1,
  });

  it('survives a reopen, stays within its byte bound (least recently used out), and drops a corrupt file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-fwcache-'));
    const cache = new DiskCache(dir, 250);
    const a = Buffer.alloc(100, 1);
    const b = Buffer.alloc(100, 2);
    const c = Buffer.alloc(100, 3);
    await cache.put(meta(a, '1.0.0'), 'a', a);
    await cache.put(meta(b, '1.0.0'), 'b', b);
    cache.touch(['a']);
    await cache.put(meta(c, '1.0.0'), 'c', c);
    expect(cache.bytes).toBe(200);
    const reopened = new DiskCache(dir, 250);
    expect((await reopened.load('a'))?.bytes.equals(a)).toBe(true);
    expect(await reopened.load('b')).toBeUndefined();
    expect(readdirSync(join(dir, 'blobs'))).toHaveLength(2);
    writeFileSync(join(dir, 'blobs', sha256(c).slice(7)), Buffer.alloc(100, 9));
    expect(await reopened.load('c')).toBeUndefined();
  });
});
