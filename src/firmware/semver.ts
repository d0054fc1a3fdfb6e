import { compare, parse, type SemVer } from 'semver';

export interface TagPolicy {
  /** pre-release tags can be latest (OtaFlux: yes) */
  allowPrerelease: boolean;
  /** v1.2.3 counts as 1.2.3 (OtaFlux's code: no) */
  allowVPrefix: boolean;
}

/**
 * Strict semver as OtaFlux's parser (dtolnay/semver) takes it: MAJOR.MINOR.PATCH, no leading
 * zeros, optional -pre and +build; anything else (latest, 1.2, 02.0.0, v1.2.3) is not a version.
 * The semver package's strict mode is that grammar, but it also takes a leading "v" and
 * surrounding spaces: those are refused first. `raw` is the version text (without a "v").
 */
export function parseVersion(tag: string, policy: Pick<TagPolicy, 'allowVPrefix'> = { allowVPrefix: false }): SemVer | undefined {
  const text = policy.allowVPrefix && /^v\d/.test(tag) ? tag.slice(1) : tag;
  if (!/^\d/.test(text) || text !== text.trim()) return undefined;
  return parse(text) ?? undefined;
}

/** The highest eligible tag (never assuming the registry's order), or undefined. */
export function latestTag(tags: string[], policy: TagPolicy): { tag: string; version: string } | undefined {
  let best: { tag: string; v: SemVer } | undefined;
  for (const tag of tags) {
    const v = parseVersion(tag, policy);
    if (!v || (!policy.allowPrerelease && v.prerelease.length > 0)) continue;
    // Equal precedence (1.0.0 and v1.0.0): the plain tag wins, whatever the order.
    const order = best ? compare(v, best.v) : 1;
    if (order > 0 || (order === 0 && tag === v.raw)) best = { tag, v };
  }
  return best && { tag: best.tag, version: best.v.raw };
}
