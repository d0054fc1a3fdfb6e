import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { fromPromise } from 'xstate';
import { firmwareEntryMachine, type FirmwareMeta, type Resolved } from '../../machines/firmware-entry.js';
import { firmwareMachine } from '../../machines/firmware.js';
import type { Config } from '../config/schema.js';
import { loadPublicKey, verifyCosign } from '../firmware/cosign.js';
import { DiskCache } from '../firmware/disk-cache.js';
import { RegistryClient, RegistryError, sha256 } from '../firmware/registry.js';
import { latestTag } from '../firmware/semver.js';
import type { FirmwareService } from '../firmware/service.js';
import type { Logger } from '../log.js';

export interface FirmwareDeps {
  config: Config;
  service: FirmwareService;
  log: Logger;
}

/** The repository of a device: <prefix>/<device>, one trailing "/" of the prefix ignored (as OtaFlux). */
export const repositoryOf = (prefix: string, device: string) => {
  const p = prefix.replace(/\/$/, '');
  return p ? `${p}/${device}` : device;
};

/**
 * The real actors of the firmware entry chart: the registry, sha256 verification (and cosign
 * when a key is configured), CRC32 once, the disk cache. Verified bytes go to the service's
 * `pending` map, keyed by device; the chart only ever holds the build's metadata.
 */
export function firmwareActors(deps: FirmwareDeps) {
  const { config, service, log } = deps;
  const fw = config.firmware;
  const client = new RegistryClient({ url: fw.registry.url ?? 'localhost', insecure: fw.registry.insecure, username: fw.registry.username, password: fw.registry.password });
  const disk = new DiskCache(fw.cacheDir ?? join(config.stateDir, 'firmware'), fw.maxCacheBytes);
  const key = fw.cosignPublicKey ? loadPublicKey(readFileSync(fw.cosignPublicKey, 'utf8')) : undefined;
  const policy = { allowPrerelease: fw.allowPrerelease, allowVPrefix: fw.allowVPrefix };
  const fetched = new Map<string, Buffer>();
  const repo = (device: string) => repositoryOf(fw.registry.repositoryPrefix, device);

  const loadCached = fromPromise<FirmwareMeta | null, { device: string }>(async ({ input }) => {
    const cached = await disk.load(input.device);
    if (!cached) return null;
    service.pending.set(input.device, { digest: cached.meta.digest, bytes: cached.bytes });
    log.info({ device: input.device, version: cached.meta.version }, 'firmware loaded from the disk cache');
    return cached.meta;
  });

  const resolveLatest = fromPromise<Resolved, { device: string; known: string | null }>(async ({ input }) => {
    const tags = await client.listTags(repo(input.device));
    const latest = latestTag(tags, policy);
    if (!latest) throw new RegistryError(`no eligible semver tag in ${repo(input.device)} (${tags.length} tags)`, undefined, 'no_version');
    const { manifestDigest, layer } = await client.resolveLayer(repo(input.device), latest.tag);
    if (layer.size > fw.maxCacheBytes) throw new RegistryError(`firmware of ${layer.size} bytes is larger than maxCacheBytes`, undefined, 'too_large');
    return { ...latest, manifestDigest, layer: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType } };
  });

  const fetchBlob = fromPromise<string, { device: string; resolved: Resolved }>(async ({ input }) => {
    const bytes = await client.getBlob(repo(input.device), input.resolved.layer.digest, input.resolved.layer.size);
    fetched.set(input.device, bytes);
    return `${input.device}@${input.resolved.layer.digest}`;
  });

  const verifyBlob = fromPromise<FirmwareMeta, { device: string; resolved: Resolved; handle: string }>(async ({ input }) => {
    const { device, resolved } = input;
    const bytes = fetched.get(device);
    fetched.delete(device);
    if (!bytes) throw new Error('the fetched bytes are gone');
    const digest = sha256(bytes);
    if (bytes.length !== resolved.layer.size || digest !== resolved.layer.digest) {
      log.error({ device, expected: resolved.layer.digest, got: digest, size: bytes.length }, 'firmware blob does not match its digest: refused');
      throw new RegistryError(`blob digest ${digest} (${bytes.length} bytes) does not match ${resolved.layer.digest} (${resolved.layer.size} bytes)`, undefined, 'digest_mismatch');
    }
    if (key) await verifyCosign(client, repo(device), resolved.manifestDigest, key);
    const meta: FirmwareMeta = { version: resolved.version, tag: resolved.tag, manifestDigest: resolved.manifestDigest, digest, size: bytes.length, crc32: crc32(bytes) };
    await disk.put(meta, device, bytes).catch((error) => log.warn({ device, err: String(error) }, 'cannot write the firmware cache'));
    service.pending.set(device, { digest, bytes });
    log.info({ device, version: meta.version, size: meta.size, digest }, 'firmware verified');
    return meta;
  });

  const entry = firmwareEntryMachine.provide({ actors: { loadCached, resolveLatest, fetchBlob, verifyBlob } });
  const probeRegistry = fromPromise<void, void>(() => client.ping());
  const machine = firmwareMachine.provide({ actors: { entry, probeRegistry } });
  return { machine, client, disk };
}
