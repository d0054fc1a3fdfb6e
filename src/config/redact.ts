/** Keys whose values are secrets wherever they sit in the config (mqtt.password, http.token,
 * firmware.webhookSecret, monitor.slackWebhookUrl, a broker user's password …): matched by
 * name, so a key added later is covered without a list to keep up to date. */
const SECRET_KEY = /password|passphrase|secret|token|webhookurl|apikey|privatekey|credential/i;

/** A deep copy of `value` with every secret string replaced by "***" (for --print-config). */
export function redactSecrets<T>(value: T): T {
  return redact(value) as T;
}

function redact(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return SECRET_KEY.test(key) && value !== '' ? '***' : value;
  if (Array.isArray(value)) return value.map((item) => redact(item, key));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  return value;
}
