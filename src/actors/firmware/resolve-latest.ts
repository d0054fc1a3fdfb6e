import { fromPromise } from 'xstate';
import type { Resolved } from '../../../machines/firmware-entry.js';
import { RegistryError, type RegistryClient } from '../../firmware/registry.js';
import { latestTag, type TagPolicy } from '../../firmware/semver.js';

export interface ResolveLatestPorts {
  registry: Pick<RegistryClient, 'listTags' | 'resolveLayer'>;
  /** the device's repository in the registry */
  repository: (device: string) => string;
  policy: TagPolicy;
  /** a layer larger than this is refused before it is fetched */
  maxBytes: number;
}

/**
 * The `resolveLatest` actor of the firmware entry chart: the newest eligible semver tag of the
 * device's repository and its one firmware layer. Its output is all the fetch needs.
 */
export function resolveLatestActor(ports: ResolveLatestPorts) {
  return fromPromise<Resolved, { device: string; known: string | null }>(async ({ input }) => {
    const repo = ports.repository(input.device);
    const tags = await ports.registry.listTags(repo);
    const latest = latestTag(tags, ports.policy);
    if (!latest) throw new RegistryError(`no eligible semver tag in ${repo} (${tags.length} tags)`, undefined, 'no_version');
    const { manifestDigest, layer } = await ports.registry.resolveLayer(repo, latest.tag);
    if (layer.size > ports.maxBytes) throw new RegistryError(`firmware of ${layer.size} bytes is larger than maxCacheBytes`, undefined, 'too_large');
    return { ...latest, manifestDigest, layer: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType } };
  });
}
