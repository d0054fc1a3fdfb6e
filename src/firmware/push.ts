import { MEDIA, sha256, type RegistryClient } from './registry.js';

export const FIRMWARE_MEDIA_TYPE = 'application/vnd.espressif.esp32.firmware.v1+binary';
const EMPTY = Buffer.from('{}');

export interface PushOptions {
  repo: string;
  tag: string;
  bytes: Buffer;
  /** the layer's media type (OtaFlux's docs push ESP32 firmware as FIRMWARE_MEDIA_TYPE) */
  mediaType?: string;
  fileName?: string;
  /**
   * oras: what `oras push` (ORAS >= 1.1) writes: an OCI image manifest with the empty config;
   * index: the same behind an OCI image index; docker: a Docker schema 2 manifest.
   */
  layout?: 'oras' | 'index' | 'docker';
}

/** Pushes one firmware file as an OCI artifact, the way publishers do; returns the digests. */
export async function pushFirmware(client: RegistryClient, options: PushOptions): Promise<{ manifestDigest: string; layerDigest: string; size: number }> {
  const { repo, tag, bytes } = options;
  const layout = options.layout ?? 'oras';
  const layerDigest = await client.pushBlob(repo, bytes);
  const layer = {
    mediaType: options.mediaType ?? FIRMWARE_MEDIA_TYPE,
    digest: layerDigest,
    size: bytes.length,
    annotations: { 'org.opencontainers.image.title': options.fileName ?? 'firmware.bin' },
  };
  if (layout === 'docker') {
    const config = Buffer.from(JSON.stringify({ architecture: 'xtensa', os: 'none' }));
    const configDigest = await client.pushBlob(repo, config);
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layerDigest, size: bytes.length }],
    };
    return { manifestDigest: await client.pushManifest(repo, tag, manifest), layerDigest, size: bytes.length };
  }
  const emptyDigest = await client.pushBlob(repo, EMPTY);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType: 'application/vnd.unknown.artifact.v1',
    config: { mediaType: MEDIA.ociEmpty, digest: emptyDigest, size: EMPTY.length },
    layers: [layer],
    annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
  };
  if (layout === 'oras') return { manifestDigest: await client.pushManifest(repo, tag, manifest), layerDigest, size: bytes.length };
  // An index names its manifests by digest: push the image manifest untagged first.
  const body = Buffer.from(JSON.stringify(manifest));
  const imageDigest = sha256(body);
  await client.pushManifest(repo, imageDigest, manifest);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: [{ mediaType: MEDIA.ociManifest, digest: imageDigest, size: body.length, platform: { architecture: 'xtensa', os: 'none' } }],
  };
  await client.pushManifest(repo, tag, index);
  return { manifestDigest: imageDigest, layerDigest, size: bytes.length };
}
