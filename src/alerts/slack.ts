import type { AlertNotice } from '../../machines/alert.js';
import { ChannelError, type Channel } from './channel.js';

export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

/** Slack's mrkdwn treats these three as control characters (its "escaping text" rules). */
const escapeMrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const num = (v: number) => (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : String(v));
const RECOVERED_WHEN: Record<AlertNotice['op'], string> = { '>': '<=', '>=': '<', '<': '>=', '<=': '>' };

/** The incoming-webhook body for one notice: `text` (the notification and fallback) and `blocks`. */
export function slackMessage(notice: AlertNotice, source: string): SlackMessage {
  const { kind, rule, device, metric, op, threshold, clear, severity } = notice;
  const value = num(notice.value);
  const text =
    kind === 'firing'
      ? `:rotating_light: FIRING [${severity}] ${rule} on ${device}: ${metric} = ${value} ${op} ${num(threshold)}, since ${iso(notice.since)}`
      : `:white_check_mark: RESOLVED [${severity}] ${rule} on ${device}: ${metric} = ${value} (${RECOVERED_WHEN[op]} ${num(clear)}), at ${iso(notice.at)}; breached since ${iso(notice.since)}`;
  const fields = [
    ['Device', device],
    ['Metric', metric],
    ['Value', value],
    [kind === 'firing' ? 'Threshold' : 'Cleared at', kind === 'firing' ? `${op} ${num(threshold)}` : `${RECOVERED_WHEN[op]} ${num(clear)}`],
    ['Since', iso(notice.since)],
    ['Severity', severity],
  ].map(([title, v]) => ({ type: 'mrkdwn', text: `*${title}*\n${escapeMrkdwn(v)}` }));
  const context = [`${escapeMrkdwn(notice.alert)} · ${escapeMrkdwn(source)} · ${iso(notice.at)}`];
  if (notice.suppressed > 0) context.push(`${notice.suppressed} earlier notice(s) of rule ${escapeMrkdwn(rule)} held back by the rate limit`);
  return {
    text: escapeMrkdwn(text),
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*${kind === 'firing' ? ':rotating_light: Firing' : ':white_check_mark: Resolved'}: ${escapeMrkdwn(rule)}* on *${escapeMrkdwn(device)}*`,
        },
      },
      { type: 'section', fields },
      { type: 'context', elements: context.map((t) => ({ type: 'mrkdwn', text: t })) },
    ],
  };
}

export interface SlackPorts {
  webhookUrl: string;
  /** named in the message: which agent sent it */
  source: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Posts notices to a Slack incoming webhook. Slack answers 200 "ok"; 429 with Retry-After
 * when rate limited; 400 (invalid_payload) or 413 for a message it will never take, which is
 * refused for good; anything else (5xx, 403/404/410 for a revoked or misconfigured hook, a
 * timeout, a refused connection) is retried with backoff, so fixing the hook delivers them.
 */
export function slackChannel(ports: SlackPorts): Channel {
  const post = ports.fetch ?? fetch;
  return {
    name: 'slack',
    async send(notice, signal) {
      const body = JSON.stringify(slackMessage(notice, ports.source));
      let response: Response;
      try {
        response = await post(ports.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(ports.timeoutMs ?? 10_000)]),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        throw new ChannelError(cause?.code ?? 'network', `cannot reach Slack: ${cause?.code ?? (error as Error).message}`);
      }
      const answer = (await response.text().catch(() => '')).slice(0, 200);
      if (response.ok) return;
      const retryAfter = Number(response.headers.get('retry-after'));
      const permanent = response.status === 400 || response.status === 413;
      throw new ChannelError(`http_${response.status}`, `Slack answered ${response.status} ${answer}`.trim(), {
        permanent,
        retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      });
    },
  };
}
