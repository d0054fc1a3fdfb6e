/**
 * statusDetails within the AWS IoT Jobs limits: at most 10 pairs, keys [a-zA-Z0-9:_-]{1,128},
 * values strings of 1 to 1,024 characters without control characters (newlines, which the
 * service evidently accepts, are kept). Empty values are left out, never sent as "".
 */
export const MAX_PAIRS = 10;
export const MAX_VALUE_CHARS = 1024;
const KEY = /^[a-zA-Z0-9:_-]{1,128}$/;

export type StatusDetails = Record<string, string>;

/** Control characters other than newline, and lone surrogates. */
// eslint-disable-next-line no-control-regex
const UNWANTED = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function clean(text: string): string {
  return text.replace(UNWANTED, '');
}

/** The last `max` characters, never starting inside a surrogate pair. */
export function lastChars(text: string, max = MAX_VALUE_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(text.length - max);
  return /^[\udc00-\udfff]/.test(cut) ? cut.slice(1) : cut;
}

/** The first `max` characters, never ending inside a surrogate pair. */
export function firstChars(text: string, max = MAX_VALUE_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/**
 * Builds the map from pairs in priority order: the first ten non-empty ones are kept.
 * Output streams keep their end (`tail: true`), everything else its beginning.
 */
export function statusDetails(pairs: Array<[key: string, value: string | number | boolean | undefined | null, tail?: boolean]>): StatusDetails {
  const details: StatusDetails = {};
  let count = 0;
  for (const [key, raw, tail] of pairs) {
    if (count === MAX_PAIRS) break;
    if (raw === undefined || raw === null || !KEY.test(key) || key in details) continue;
    const text = clean(String(raw));
    const value = tail ? lastChars(text) : firstChars(text);
    if (value.length === 0) continue;
    details[key] = value;
    count++;
  }
  return details;
}

/** Whether a map satisfies the limits (for the local jobs service and the tests). */
export function checkStatusDetails(details: unknown): string | undefined {
  if (details === undefined) return undefined;
  if (!details || typeof details !== 'object' || Array.isArray(details)) return 'statusDetails must be an object';
  const entries = Object.entries(details);
  if (entries.length > MAX_PAIRS) return `statusDetails has ${entries.length} pairs; at most ${MAX_PAIRS}`;
  for (const [key, value] of entries) {
    if (!KEY.test(key)) return `statusDetails key "${key}" must match [a-zA-Z0-9:_-]{1,128}`;
    if (typeof value !== 'string') return `statusDetails.${key} must be a string`;
    if (value.length < 1 || value.length > MAX_VALUE_CHARS) return `statusDetails.${key} must be 1 to ${MAX_VALUE_CHARS} characters`;
    if (clean(value) !== value) return `statusDetails.${key} holds control characters`;
  }
  return undefined;
}
