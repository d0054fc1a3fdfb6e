import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firmwareEntryMachine } from '../../../machines/firmware-entry.js';
import { firmwareMachine } from '../../../machines/firmware.js';
import type { Config } from '../../config/schema.js';
import { VerifiedBlobs } from '../../firmware/blobs.js';
import { loadPublicKey } from '../../firmware/cosign.js';
import { DiskCache } from '../../firmware/disk-cache.js';
import { RegistryClient } from '../../firmware/registry.js';
import { repositoryOf } from '../../firmware/repository.js';
import type { Logger } from '../../log.js';
import { fetchAndVerifyActor } from './fetch-and-verify.js';
import { loadCachedActor } from './load-cached.js';
import { probeRegistryActor } from './probe-registry.js';
import { resolveLatestActor } from './resolve-latest.js';

export interface FirmwareDeps {
  config: Config;
  log: Logger;
}

/**
 * The firmware concern's real actors, each given its ports: the registry client, the disk
 * cache and the in-memory blob store keyed by digest. The charts only ever hold a build's
 * metadata; the bytes are in the blob store under the digest the metadata names.
 */
export function firmwareActors(deps: FirmwareDeps) {
  const { config, log } = deps;
  const fw = config.firmware;
  const registry = new RegistryClient({
    url: fw.registry.url ?? 'localhost',
    insecure: fw.registry.insecure,
    username: fw.registry.username,
    password: fw.registry.password,
  });
  const disk = new DiskCache(fw.cacheDir ?? join(config.stateDir, 'firmware'), fw.maxCacheBytes);
  const blobs = new VerifiedBlobs(fw.maxCacheBytes);
  const cosignKey = fw.cosignPublicKey ? loadPublicKey(readFileSync(fw.cosignPublicKey, 'utf8')) : undefined;
  const repository = (device: string) => repositoryOf(fw.registry.repositoryPrefix, device);

  const entry = firmwareEntryMachine.provide({
    actors: {
      loadCached: loadCachedActor({ disk, blobs, log }),
      resolveLatest: resolveLatestActor({
        registry,
        repository,
        policy: { allowPrerelease: fw.allowPrerelease, allowVPrefix: fw.allowVPrefix },
        maxBytes: fw.maxCacheBytes,
      }),
      fetchAndVerify: fetchAndVerifyActor({ registry, repository, cosignKey, disk, blobs, log }),
    },
  });
  const machine = firmwareMachine.provide({ actors: { entry, probeRegistry: probeRegistryActor({ registry }) } });
  return { machine, client: registry, disk, blobs };
}
