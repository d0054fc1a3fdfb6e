/** When a batched /ws client's readings go out: whichever of these comes first. */
export interface BatchLimits {
  /** the oldest reading waits at most this long */
  intervalMs: number;
  /** readings in one frame */
  maxItems: number;
  /** UTF-8 bytes of the readings in one frame */
  maxBytes: number;
}

export const defaultBatchLimits: BatchLimits = { intervalMs: 100, maxItems: 256, maxBytes: 64 * 1024 };

/**
 * The readings of one /ws client that asked for `batch: true`, sent as one
 * {"type":"readings","frames":[…]} frame at most every intervalMs (sooner when maxItems or
 * maxBytes are reached): a page watching a device at 1,000 readings/s then takes ~10 frames a
 * second instead of 1,000. The frames are the texts of the single {"type":"reading"} and
 * {"type":"rejected"} frames, already serialised once for all clients, joined, never parsed
 * again. What waits here is bounded by maxItems and maxBytes (plus one reading); what is sent
 * goes through the client's own slow-client check.
 */
export class ReadingBatch {
  private texts: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sentAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly send: (text: string) => void,
    private readonly limits: BatchLimits = defaultBatchLimits,
  ) {}

  add(text: string): void {
    this.texts.push(text);
    this.bytes += Buffer.byteLength(text);
    if (this.texts.length >= this.limits.maxItems || this.bytes >= this.limits.maxBytes) return this.flush();
    if (this.timer) return;
    // A reading after a quiet spell goes at once (a lone serial line is not held back); the
    // next ones wait for the rest of the interval. Unref'd: a waiting batch keeps no process alive.
    const wait = this.sentAt + this.limits.intervalMs - performance.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => this.flush(), wait).unref();
  }

  /** Sends what waits (if anything) now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.texts.length === 0) return;
    const text = `{"type":"readings","frames":[${this.texts.join(',')}]}`;
    this.texts = [];
    this.bytes = 0;
    this.sentAt = performance.now();
    this.send(text);
  }

  /** Drops what waits and the timer: the client is gone. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.texts = [];
    this.bytes = 0;
  }
}
