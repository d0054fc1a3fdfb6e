/** Strict semver as OtaFlux's parser (dtolnay/semver) takes it: MAJOR.MINOR.PATCH, no leading
 * zeros, optional -pre and +build; anything else (latest, 1.2, 02.0.0, v1.2.3) is not a version. */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
  text: string;
}

const NUM = '(0|[1-9]\\d*)';
const PRE_ID = '(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)';
const STRICT = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$`);

export interface TagPolicy {
  /** pre-release tags can be latest (OtaFlux: yes) */
  allowPrerelease: boolean;
  /** v1.2.3 counts as 1.2.3 (OtaFlux's code: no) */
  allowVPrefix: boolean;
}

export function parseVersion(tag: string, policy: Pick<TagPolicy, 'allowVPrefix'> = { allowVPrefix: false }): SemVer | undefined {
  const text = policy.allowVPrefix && /^v\d/.test(tag) ? tag.slice(1) : tag;
  const m = STRICT.exec(text);
  if (!m) return undefined;
  const [major, minor, patch] = [m[1], m[2], m[3]].map(Number);
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  return { major, minor, patch, pre: m[4] ? m[4].split('.') : [], text };
}

/** Semver precedence: numbers, then a release above its pre-releases, then identifier by identifier. */
export function compareVersions(a: SemVer, b: SemVer): number {
  for (const key of ['major', 'minor', 'patch'] as const) if (a[key] !== b[key]) return a[key] < b[key] ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return Number(x) < Number(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** The highest eligible tag (never assuming the registry's order), or undefined. */
export function latestTag(tags: string[], policy: TagPolicy): { tag: string; version: string } | undefined {
  let best: { tag: string; v: SemVer } | undefined;
  for (const tag of tags) {
    const v = parseVersion(tag, policy);
    if (!v || (!policy.allowPrerelease && v.pre.length > 0)) continue;
    // Equal precedence (1.0.0 and v1.0.0): the plain tag wins, whatever the order.
    if (!best || compareVersions(v, best.v) > 0 || (compareVersions(v, best.v) === 0 && tag === v.text)) best = { tag, v };
  }
  return best && { tag: best.tag, version: best.v.text };
}
