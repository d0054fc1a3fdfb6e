import { z } from 'zod';

/** An MQTT topic name to publish to: no wildcards, no NUL, 1 to 65,535 bytes of UTF-8. */
export const topicName = z
  .string()
  .min(1, 'must not be empty')
  .refine((t) => Buffer.byteLength(t) <= 65_535, 'is longer than 65,535 bytes')
  .refine((t) => !/[+#]/.test(t), 'must not contain the wildcards + or # (it is a topic to publish to)')
  .refine((t) => !t.includes('\u0000'), 'must not contain NUL');
