import { z } from 'zod';

/** The monitoring document on <prefix>/<device>/monitoring (schema 1). */
export const SAMPLE_SCHEMA_VERSION = 1;

/** Bytes of a monitoring payload at most, before it is parsed. */
export const MAX_SAMPLE_BYTES = 64 * 1024;
/** Keys in one sample at most. */
export const MAX_SAMPLE_KEYS = 1024;

export const METRIC_KEY = /^[a-z0-9][a-z0-9-]{0,127}$/;
export const DEVICE_ID = /^[A-Za-z0-9:_-]{1,128}$/;

export const SamplePayload = z.strictObject({
  schema: z.literal(SAMPLE_SCHEMA_VERSION),
  ts: z.number().int().positive().max(8.64e15),
  device: z.string().regex(DEVICE_ID).optional(),
  values: z
    .record(
      z.string().regex(METRIC_KEY, 'metric keys are dash-separated lower case, as cpu-percent'),
      z.number().refine(Number.isFinite, 'must be a finite number'),
    )
    .refine((values) => Object.keys(values).length <= MAX_SAMPLE_KEYS, `at most ${MAX_SAMPLE_KEYS} keys`),
});
export type SamplePayload = z.infer<typeof SamplePayload>;

/** The payload as it is published: {schema, ts, device, values}. */
export function encodeSample(device: string, ts: number, values: Record<string, number>): Buffer {
  return Buffer.from(JSON.stringify({ schema: SAMPLE_SCHEMA_VERSION, ts, device, values }));
}

export type Decoded = { ok: true; sample: SamplePayload } | { ok: false; reason: string };

/** Checks size, JSON and shape; a refusal says why in one line. */
export function decodeSample(payload: Buffer): Decoded {
  if (payload.length > MAX_SAMPLE_BYTES) return { ok: false, reason: `payload of ${payload.length} bytes is over ${MAX_SAMPLE_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  const result = SamplePayload.safeParse(json);
  if (result.success) return { ok: true, sample: result.data };
  const issue = result.error.issues[0]!;
  return { ok: false, reason: `${issue.path.join('.') || 'payload'}: ${issue.message}` };
}

/** The device id in <prefix>/<device>/monitoring, or undefined when the topic is not one. */
export function deviceOfTopic(topic: string, prefix: string): string | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/monitoring')) return undefined;
  const device = topic.slice(prefix.length + 1, -'/monitoring'.length);
  return DEVICE_ID.test(device) ? device : undefined;
}
