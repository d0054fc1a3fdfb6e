import { EventEmitter } from 'node:events';
import type { OutboxCounters } from '../../machines/outbox.js';
import { encodeMessage, encodeSettle, RecordType, type OutboxMessage } from './record.js';
import { SegmentLog, type RecoveryReport } from './segment-log.js';

export type OverflowPolicy = 'dropOldest' | 'rejectNew';

export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
  segmentBytes: number;
}

/** The chart's counters, and the store's own figures besides. */
export interface OutboxStats extends OutboxCounters {
  payloadBytes: number;
  bytesWritten: number;
  syncs: number;
  recoveredMessages: number;
  corruptRegions: number;
  tornBytes: number;
}

export class OutboxFullError extends Error {
  readonly code = 'outbox_full';
}

interface Entry {
  seq: number;
  message: OutboxMessage;
  segment: number;
  size: number;
  durable: boolean;
}

/** How long ACK records may wait in memory before they are written (unsynced). */
const ACK_FLUSH_MS = 50;

/** "full" clears once the queue is back under this share of its limits (hysteresis). */
const FULL_CLEARS_BELOW = 0.9;

/**
 * The durable, bounded, ordered reconnect queue. `enqueue` resolves once the message is on
 * disk (group commit: one fdatasync for every message queued meanwhile), so there is no
 * fsync window; a message leaves only when the broker acknowledged it (`ack`) or the
 * overflow policy dropped it, and both are recorded. Delivery order is enqueue order.
 *
 * Events: `ready` (durable messages wait to be sent), `change` (counters moved), `error`.
 */
export class Outbox extends EventEmitter {
  private readonly live = new Map<number, Entry>();
  private liveBytes = 0;
  private nextSeq = 1;
  private sendQueue: number[] = [];
  private sendHead = 0;
  private waiting: Array<{ entry: Entry; resolve: (seq: number) => void; reject: (e: unknown) => void }> = [];
  private commitScheduled = false;
  private ackFlush: NodeJS.Timeout | undefined;
  private full = false;
  private closed = false;
  private readonly counters = { enqueued: 0, delivered: 0, dropped: 0, refused: 0, payloadBytes: 0 };

  private constructor(
    private readonly log: SegmentLog,
    private readonly limits: OutboxLimits,
    private readonly recovery: RecoveryReport & { recoveredMessages: number },
  ) {
    super();
  }

  static async open(dir: string, limits: OutboxLimits): Promise<Outbox> {
    const { log, recovered } = await SegmentLog.open(dir, limits.segmentBytes);
    const outbox = new Outbox(log, limits, { ...recovered, recoveredMessages: 0 });
    outbox.replay(recovered);
    return outbox;
  }

  private replay(recovered: RecoveryReport): void {
    for (const { record, segment } of recovered.records) {
      this.nextSeq = Math.max(this.nextSeq, record.seq + 1);
      if (record.type === RecordType.Message) {
        const size = record.message.payload.length + Buffer.byteLength(record.message.topic);
        this.live.set(record.seq, { seq: record.seq, message: record.message, segment, size, durable: true });
        this.liveBytes += size;
        this.log.hold(segment);
      } else this.forget(record.seq);
    }
    this.recovery.recoveredMessages = this.live.size;
    this.log.deleteSettledSegments();
    this.rewind();
  }

  /** Accepts a message; resolves with its sequence number once it is durable. */
  enqueue(message: OutboxMessage): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the outbox is closed'));
    const size = message.payload.length + Buffer.byteLength(message.topic);
    if (size > this.limits.maxBytes || this.limits.maxMessages < 1) {
      this.counters.refused++;
      return Promise.reject(new OutboxFullError(`a message of ${size} bytes can never fit in outbox.maxBytes (${this.limits.maxBytes})`));
    }
    while (this.live.size + 1 > this.limits.maxMessages || this.liveBytes + size > this.limits.maxBytes) {
      this.full = true;
      if (this.limits.overflow === 'rejectNew') {
        this.counters.refused++;
        this.emit('change');
        return Promise.reject(new OutboxFullError(`the outbox is full (${this.live.size} messages, ${this.liveBytes} bytes)`));
      }
      this.dropOldest();
    }
    const seq = this.nextSeq++;
    const entry: Entry = { seq, message, segment: this.log.activeSegment, size, durable: false };
    this.live.set(seq, entry);
    this.liveBytes += size;
    this.log.hold(entry.segment);
    this.log.append(encodeMessage(seq, message));
    this.counters.enqueued++;
    this.counters.payloadBytes += message.payload.length;
    return new Promise<number>((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      this.commitSoon();
    });
  }

  private dropOldest(): void {
    const oldest = this.live.values().next().value as Entry;
    this.log.append(encodeSettle(RecordType.Drop, oldest.seq));
    this.forget(oldest.seq);
    this.counters.dropped++;
  }

  /** The next durable message not yet handed out, in order. */
  next(): { seq: number; message: OutboxMessage } | undefined {
    while (this.sendHead < this.sendQueue.length) {
      const entry = this.live.get(this.sendQueue[this.sendHead++]);
      if (entry) return entry;
    }
    if (this.sendHead > 0) (this.sendQueue = []), (this.sendHead = 0);
    return undefined;
  }

  /** The broker acknowledged it: it leaves the queue for good. */
  ack(seq: number): void {
    if (!this.live.has(seq)) return; // dropped while in flight
    this.log.append(encodeSettle(RecordType.Ack, seq));
    this.forget(seq);
    this.counters.delivered++;
    if (this.full && this.live.size < this.limits.maxMessages * FULL_CLEARS_BELOW && this.liveBytes < this.limits.maxBytes * FULL_CLEARS_BELOW) {
      this.full = false;
    }
    // An ACK record need not be durable at once (losing one means a duplicate, as QoS 1
    // allows): acks ride on the next commit, or are written unsynced a moment later.
    this.ackFlush ??= setTimeout(() => {
      this.ackFlush = undefined;
      this.log.commit(false).then(() => this.emit('change'), (error) => this.emit('error', error));
    }, ACK_FLUSH_MS);
  }

  /** The connection went away: everything not acknowledged is sent again, in order. */
  rewind(): void {
    this.sendQueue = [];
    this.sendHead = 0;
    for (const entry of this.live.values()) if (entry.durable) this.sendQueue.push(entry.seq);
  }

  private forget(seq: number): void {
    const entry = this.live.get(seq);
    if (!entry) return;
    this.live.delete(seq);
    this.liveBytes -= entry.size;
    this.log.release(entry.segment);
  }

  private commitSoon(): void {
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    setImmediate(() => void this.commitNow());
  }

  private async commitNow(): Promise<void> {
    this.commitScheduled = false;
    const batch = this.waiting;
    this.waiting = [];
    try {
      await this.log.commit();
    } catch (error) {
      for (const w of batch) {
        this.forget(w.entry.seq);
        w.reject(error);
      }
      this.emit('error', error);
      return;
    }
    for (const w of batch) {
      w.entry.durable = true;
      if (this.live.has(w.entry.seq)) this.sendQueue.push(w.entry.seq);
      w.resolve(w.entry.seq);
    }
    if (batch.length > 0) this.emit('ready');
    this.emit('change');
  }

  stats(): OutboxStats {
    return {
      depth: this.live.size,
      bytes: this.liveBytes,
      full: this.full,
      ...this.counters,
      bytesWritten: this.log.bytesWritten,
      syncs: this.log.syncs,
      recoveredMessages: this.recovery.recoveredMessages,
      corruptRegions: this.recovery.corruptRegions,
      tornBytes: this.recovery.tornBytes,
    };
  }

  /** Writes what is queued (acks included) and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.ackFlush);
    await this.commitNow();
    await this.log.close();
  }
}

