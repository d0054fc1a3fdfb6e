import { z } from 'zod';

/** A lone UTF-16 surrogate: it has no UTF-8 form, and would be sent as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** C0 and C1 control characters, which MQTT says a topic should not hold (NUL: must not). */
const CONTROL = /[\u0001-\u001F\u007F-\u009F]/;

/** Whether a string survives the trip to UTF-8 unchanged. */
export const isWellFormed = (text: string) => !LONE_SURROGATE.test(text);

/** An MQTT topic name to publish to: no wildcards, no NUL, 1 to 65,535 bytes of UTF-8. */
export const topicName = z
  .string()
  .min(1, 'must not be empty')
  .refine(isWellFormed, 'must be valid Unicode (it holds a lone surrogate, which UTF-8 cannot carry)')
  .refine((t) => Buffer.byteLength(t) <= 65_535, 'is longer than 65,535 bytes')
  .refine((t) => !/[+#]/.test(t), 'must not contain the wildcards + or # (it is a topic to publish to)')
  .refine((t) => !t.includes('\u0000'), 'must not contain NUL');

/** What the outbox accepts as a topic, beyond what MQTT itself requires. */
export interface TopicRules {
  /** topics starting with "$" ($SYS/…, $aws/…) are the broker's own; most brokers refuse them */
  allowDollar: boolean;
  /** levels ("a/b/c" has 3) at most */
  maxLevels: number;
  /** UTF-8 bytes at most */
  maxBytes: number;
}

/** AWS IoT Core's limits: 256 bytes and 7 slashes (8 levels). */
export const defaultTopicRules: TopicRules = { allowDollar: false, maxLevels: 8, maxBytes: 256 };

/** Why `topic` cannot be published under `rules`, or null when it can. */
export function topicProblem(topic: string, rules: TopicRules = defaultTopicRules): string | null {
  if (topic.length === 0) return 'must not be empty';
  if (!isWellFormed(topic)) return 'must be valid Unicode (it holds a lone surrogate, which UTF-8 cannot carry)';
  if (topic.includes('\u0000')) return 'must not contain NUL';
  if (CONTROL.test(topic)) return 'must not contain control characters';
  if (/[+#]/.test(topic)) return 'must not contain the wildcards + or # (it is a topic to publish to)';
  const bytes = Buffer.byteLength(topic);
  if (bytes > rules.maxBytes) return `is ${bytes} bytes; the limit is ${rules.maxBytes} (outbox.maxTopicBytes)`;
  const levels = topic.split('/').length;
  if (levels > rules.maxLevels) return `has ${levels} levels; the limit is ${rules.maxLevels} (outbox.maxTopicLevels)`;
  if (topic.startsWith('$') && !rules.allowDollar) return 'must not start with "$": such topics are the broker\'s own (outbox.allowDollarTopics)';
  return null;
}
