import { backoffMs, type BackoffPolicy } from '../../machines/shared/backoff.js';
import type { DeliveryStatus } from '../../machines/alerts.js';
import { toFailure, type Failure } from '../../machines/shared/types.js';
import type { Logger } from '../log.js';
import { ChannelError, type Channel } from './channel.js';
import type { AlertStore } from './store.js';

export interface DeliveryPorts {
  channel: Channel;
  store: AlertStore;
  retry: BackoffPolicy;
  jitterSeed: number;
  log: Logger;
  onStatus: (status: DeliveryStatus) => void;
}

/**
 * Delivers one channel's pending notices strictly in order: the oldest is sent until the
 * channel takes it (or refuses it for good), waiting with capped, jittered exponential
 * backoff between tries (or the Retry-After the peer asked for); the next waits meanwhile.
 * The list lives in the store, so a restart picks up where this left off.
 */
export class Delivery {
  private running = false;
  private stopped = false;
  private attempts = 0;
  private failing: Failure | null = null;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;

  constructor(private readonly ports: DeliveryPorts) {}

  /** There may be something new to send (a sleeping retry is not cut short). */
  kick(): void {
    this.report();
    if (!this.running && !this.stopped) void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    const { channel, store, log } = this.ports;
    this.running = true;
    try {
      for (let head = store.head(channel.name); head && !this.stopped; head = store.head(channel.name)) {
        try {
          await channel.send(head.notice, this.abort.signal);
          await store.settle(channel.name, head.seq, 'delivered');
          if (this.failing) log.info({ channel: channel.name, after: this.attempts }, 'alert notices are delivered again');
          this.attempts = 0;
          this.failing = null;
        } catch (error) {
          if (this.stopped) break;
          await this.failed(head.seq, head.notice.alert, error);
        }
        this.report();
      }
    } finally {
      this.running = false;
    }
  }

  private async failed(seq: number, alert: string, error: unknown): Promise<void> {
    const { channel, store, log, retry, jitterSeed } = this.ports;
    const failure = toFailure(error, 'send');
    if (error instanceof ChannelError && error.permanent) {
      log.error({ channel: channel.name, alert, err: failure.message }, 'alert notice refused for good; dropped');
      await store.settle(channel.name, seq, 'rejected');
      return;
    }
    this.attempts++;
    if (!this.failing) log.warn({ channel: channel.name, err: failure.message }, 'cannot deliver alert notices; retrying with backoff');
    this.failing = failure;
    this.report();
    const asked = error instanceof ChannelError ? error.retryAfterMs : undefined;
    await this.sleep(Math.min(retry.maxMs, asked ?? backoffMs(retry, this.attempts, jitterSeed)));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => ((this.wake = undefined), resolve()), ms);
      this.wake = () => (clearTimeout(timer), resolve());
    });
  }

  private report(): void {
    const stats = this.ports.store.stats(this.ports.channel.name);
    this.ports.onStatus({ channel: this.ports.channel.name, ...stats, failing: this.failing });
  }
}
