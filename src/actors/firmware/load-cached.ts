import { fromPromise } from 'xstate';
import type { FirmwareMeta } from '../../../machines/firmware-entry.js';
import type { VerifiedBlobs } from '../../firmware/blobs.js';
import type { DiskCache } from '../../firmware/disk-cache.js';
import type { Logger } from '../../log.js';

export interface LoadCachedPorts {
  /** verified builds on disk (re-checked against their digest as they are read) */
  disk: Pick<DiskCache, 'load'>;
  blobs: VerifiedBlobs;
  log: Logger;
}

/**
 * The `loadCached` actor of the firmware entry chart: the device's build from the disk cache,
 * its bytes put in the blob store under their digest; null when there is none. This is how a
 * restarted agent (or a restarted concern) serves again without the registry.
 */
export function loadCachedActor(ports: LoadCachedPorts) {
  return fromPromise<FirmwareMeta | null, { device: string }>(async ({ input }) => {
    const cached = await ports.disk.load(input.device);
    if (!cached) return null;
    ports.blobs.put(cached.meta.digest, cached.bytes);
    ports.log.info({ device: input.device, version: cached.meta.version }, 'firmware loaded from the disk cache');
    return cached.meta;
  });
}
