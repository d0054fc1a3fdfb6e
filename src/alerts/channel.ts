import type { AlertNotice } from '../../machines/alert.js';

/** Where notices go (Slack, MQTT): `send` resolves once the channel has taken the notice. */
export interface Channel {
  name: string;
  send(notice: AlertNotice, signal: AbortSignal): Promise<void>;
}

/** A failed send: retried with backoff unless `permanent` (then the notice is refused, counted). */
export class ChannelError extends Error {
  readonly permanent: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly code: string,
    message: string,
    options: { permanent?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.permanent = options.permanent ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}
