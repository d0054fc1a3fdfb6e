// Harbor payload checking as it was before the zod schema (commit fd69651), kept only as the
// reference the zod-based check must agree with over the fuzz corpus (test/src/firmware/harbor.test.ts).
export type HarborCheck =
  | { kind: 'ignored'; type: string }
  | { kind: 'push'; repoFullName: string; name: string; namespace: string; tags: string[] }
  | { kind: 'invalid'; message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isU64 = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function checkHarborPayload(body: unknown): HarborCheck {
  if (!isObject(body)) return { kind: 'invalid', message: 'the body is not a JSON object' };
  if (typeof body.type !== 'string') return { kind: 'invalid', message: 'missing field `type`' };
  if (body.type !== 'PUSH_ARTIFACT') return { kind: 'ignored', type: body.type };
  if (!isU64(body.occur_at)) return { kind: 'invalid', message: 'missing or invalid field `occur_at`' };
  if (typeof body.operator !== 'string') return { kind: 'invalid', message: 'missing field `operator`' };
  const data = body.event_data;
  if (!isObject(data)) return { kind: 'invalid', message: 'missing field `event_data`' };
  if (!Array.isArray(data.resources)) return { kind: 'invalid', message: 'missing field `event_data.resources`' };
  const tags: string[] = [];
  for (const [i, r] of data.resources.entries()) {
    if (!isObject(r) || typeof r.digest !== 'string' || typeof r.tag !== 'string' || typeof r.resource_url !== 'string') {
      return { kind: 'invalid', message: `event_data.resources[${i}]: digest, tag and resource_url are required strings` };
    }
    tags.push(r.tag);
  }
  const repo = data.repository;
  if (!isObject(repo)) return { kind: 'invalid', message: 'missing field `event_data.repository`' };
  for (const key of ['name', 'namespace', 'repo_full_name', 'repo_type'] as const) {
    if (typeof repo[key] !== 'string') return { kind: 'invalid', message: `missing field \`event_data.repository.${key}\`` };
  }
  if (!isU64(repo.date_created)) return { kind: 'invalid', message: 'missing or invalid field `event_data.repository.date_created`' };
  return { kind: 'push', repoFullName: repo.repo_full_name as string, name: repo.name as string, namespace: repo.namespace as string, tags };
}
