import type { KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { fromPromise } from 'xstate';
import type { FirmwareMeta, Resolved } from '../../../machines/firmware-entry.js';
import type { VerifiedBlobs } from '../../firmware/blobs.js';
import { verifyCosign } from '../../firmware/cosign.js';
import type { DiskCache } from '../../firmware/disk-cache.js';
import { RegistryError, sha256, type RegistryClient } from '../../firmware/registry.js';
import type { Logger } from '../../log.js';

export interface FetchAndVerifyPorts {
  registry: RegistryClient;
  repository: (device: string) => string;
  /** when set, the manifest must carry a cosign signature by this key */
  cosignKey: KeyObject | undefined;
  disk: Pick<DiskCache, 'put'>;
  blobs: VerifiedBlobs;
  log: Logger;
}

/**
 * The `fetchAndVerify` actor of the firmware entry chart, the one owner of a download: it
 * fetches the layer, checks its size and sha256 against what the registry resolved (and the
 * cosign signature when a key is configured), computes the CRC32 once, and only then stores
 * the bytes, in memory and on disk, under their digest. Its output is the verified build; a
 * blob that does not match is refused and never stored.
 */
export function fetchAndVerifyActor(ports: FetchAndVerifyPorts) {
  return fromPromise<FirmwareMeta, { device: string; resolved: Resolved }>(async ({ input }) => {
    const { device, resolved } = input;
    const repo = ports.repository(device);
    const bytes = await ports.registry.getBlob(repo, resolved.layer.digest, resolved.layer.size);
    const digest = sha256(bytes);
    if (bytes.length !== resolved.layer.size || digest !== resolved.layer.digest) {
      ports.log.error({ device, expected: resolved.layer.digest, got: digest, size: bytes.length }, 'firmware blob does not match its digest: refused');
      throw new RegistryError(
        `blob digest ${digest} (${bytes.length} bytes) does not match ${resolved.layer.digest} (${resolved.layer.size} bytes)`,
        undefined,
        'digest_mismatch',
      );
    }
    if (ports.cosignKey) await verifyCosign(ports.registry, repo, resolved.manifestDigest, ports.cosignKey);
    const meta: FirmwareMeta = {
      version: resolved.version,
      tag: resolved.tag,
      manifestDigest: resolved.manifestDigest,
      digest,
      size: bytes.length,
      crc32: crc32(bytes),
    };
    ports.blobs.put(digest, bytes);
    await ports.disk.put(meta, device, bytes).catch((error) => ports.log.warn({ device, err: String(error) }, 'cannot write the firmware cache'));
    ports.log.info({ device, version: meta.version, size: meta.size, digest }, 'firmware verified');
    return meta;
  });
}
