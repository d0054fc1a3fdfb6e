import { z } from 'zod';

export type HarborCheck =
  | { kind: 'ignored'; type: string }
  | { kind: 'push'; repoFullName: string; name: string; namespace: string; tags: string[] }
  | { kind: 'invalid'; message: string };

const u64 = (field: string) => z.int({ error: `missing or invalid field \`${field}\`` }).min(0, `missing or invalid field \`${field}\``);
const str = (field: string) => z.string({ error: `missing field \`${field}\`` });
const obj = <T extends z.core.$ZodLooseShape>(field: string, shape: T) => z.looseObject(shape, { error: `missing field \`${field}\`` });
const RESOURCE = 'event_data.resources[{i}]: digest, tag and resource_url are required strings';

/** The event kind: every Harbor event has a string `type`. */
const HarborEvent = z.looseObject({ type: str('type') }, { error: 'the body is not a JSON object' });

/** PUSH_ARTIFACT, every field OtaFlux's extractor requires, in the order it reads them. */
export const HarborPushSchema = z.looseObject({
  occur_at: u64('occur_at'),
  operator: str('operator'),
  event_data: obj('event_data', {
    resources: z.array(z.looseObject({ digest: z.string(RESOURCE), tag: z.string(RESOURCE), resource_url: z.string(RESOURCE) }, { error: RESOURCE }), {
      error: 'missing field `event_data.resources`',
    }),
    repository: obj('event_data.repository', {
      name: str('event_data.repository.name'),
      namespace: str('event_data.repository.namespace'),
      repo_full_name: str('event_data.repository.repo_full_name'),
      repo_type: str('event_data.repository.repo_type'),
      date_created: u64('event_data.repository.date_created'),
    }),
  }),
});

/** Harbor's webhook payload, checked (through zod) the way OtaFlux's strict extractor does for
 * the events it acts on (every field present and typed, else 422), but only for PUSH_ARTIFACT:
 * Harbor leaves fields out of other event kinds, which are answered 200 and change nothing. */
export function checkHarborPayload(body: unknown): HarborCheck {
  const event = HarborEvent.safeParse(body);
  if (!event.success) return { kind: 'invalid', message: event.error.issues[0].message };
  if (event.data.type !== 'PUSH_ARTIFACT') return { kind: 'ignored', type: event.data.type };
  const push = HarborPushSchema.safeParse(body);
  if (!push.success) {
    const { message, path } = push.error.issues[0];
    return { kind: 'invalid', message: message.replace('{i}', String(path[2])) };
  }
  const { event_data: data } = push.data;
  const { repository: repo } = data;
  return { kind: 'push', repoFullName: repo.repo_full_name, name: repo.name, namespace: repo.namespace, tags: data.resources.map((r) => r.tag) };
}

/**
 * The device a push is for. With a prefix, the repository must be <prefix>/<device> (so a
 * push to another project with the same repository name is not taken, and nested prefixes
 * work); without one, Harbor's `name` (the path after the project), as OtaFlux does.
 */
export function deviceOfPush(push: { repoFullName: string; name: string }, repositoryPrefix: string): string | undefined {
  const prefix = repositoryPrefix.replace(/\/$/, '');
  if (!prefix) return push.name;
  return push.repoFullName.startsWith(`${prefix}/`) ? push.repoFullName.slice(prefix.length + 1) : undefined;
}
