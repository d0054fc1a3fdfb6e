import { EventEmitter } from 'node:events';
import type { OutboxCounters } from '../../machines/outbox.js';
import { defaultTopicRules, topicProblem, type TopicRules } from '../mqtt/topic.js';
import { encodeMessage, encodeSettle, RecordType, type OutboxMessage } from './record.js';
import { SegmentLog, type RecoveryReport } from './segment-log.js';
import { StorageError } from './storage-error.js';

export { StorageError } from './storage-error.js';

export type OverflowPolicy = 'dropOldest' | 'rejectNew';

export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
  segmentBytes: number;
  /** what a topic must look like (default: AWS IoT Core's limits, no "$" topics) */
  topics?: TopicRules;
  /** how often the disk is tried again while it refuses writes (default 5 s) */
  storageProbeMs?: number;
}

/** The chart's counters, and the store's own figures besides. */
export interface OutboxStats extends Omit<OutboxCounters, 'deadLetters'> {
  payloadBytes: number;
  bytesWritten: number;
  syncs: number;
  recoveredMessages: number;
  corruptRegions: number;
  tornBytes: number;
  /** seqs waiting to be handed out: bounded by the depth, whatever was dropped meanwhile */
  sendQueueLength: number;
}

export class OutboxFullError extends Error {
  readonly code = 'outbox_full';
}

/** A message that can never be delivered as it is (a topic the broker would refuse). */
export class InvalidMessageError extends Error {
  readonly code = 'invalid_message';
}

interface Entry {
  seq: number;
  message: OutboxMessage;
  segment: number;
  size: number;
  durable: boolean;
  /** being moved to the dead letters: not handed out again */
  aside?: boolean;
}

/** How long ACK records may wait in memory before they are written (unsynced). */
const ACK_FLUSH_MS = 50;

/** "full" clears once the queue is back under this share of its limits (hysteresis). */
const FULL_CLEARS_BELOW = 0.9;

/** The send queue is compacted once it holds this many more seqs than live messages. */
const SEND_QUEUE_SLACK = 1024;

/**
 * The durable, bounded, ordered reconnect queue. `enqueue` resolves once the message is on
 * disk (group commit: one fdatasync for every message queued meanwhile), so there is no
 * fsync window; a message leaves only when the broker acknowledged it (`ack`), the overflow
 * policy dropped it or it was moved to the dead letters, and each is recorded. Delivery
 * order is enqueue order.
 *
 * When the disk refuses a write (full, read-only, failing), the messages of that commit are
 * refused with a StorageError and so is every new one, while delivery goes on; the disk is
 * probed every `storageProbeMs` and taken back into use once it writes again.
 *
 * Events: `ready` (durable messages wait to be sent), `change` (counters moved).
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
  private probeTimer: NodeJS.Timeout | undefined;
  private unwritable: StorageError | null = null;
  private full = false;
  private closed = false;
  private readonly counters = { enqueued: 0, delivered: 0, dropped: 0, refused: 0, deadLettered: 0, payloadBytes: 0 };

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

  /** Rebuilds the live messages from the log. Holds are counted only once the whole log is
   * read: settling during the pass would let the log delete segments whose messages it has
   * not reached yet (the cause of a second restart losing the backlog). */
  private replay(recovered: RecoveryReport): void {
    for (const { record, segment } of recovered.records) {
      this.nextSeq = Math.max(this.nextSeq, record.seq + 1);
      if (record.type === RecordType.Message) {
        const size = record.message.payload.length + Buffer.byteLength(record.message.topic);
        this.live.set(record.seq, { seq: record.seq, message: record.message, segment, size, durable: true });
        this.liveBytes += size;
        continue;
      }
      const settled = this.live.get(record.seq);
      if (settled) this.live.delete(record.seq), (this.liveBytes -= settled.size);
    }
    for (const entry of this.live.values()) this.log.hold(entry.segment);
    this.recovery.recoveredMessages = this.live.size;
    this.log.replayed();
    this.rewind();
  }

  /** Accepts a message; resolves with its sequence number once it is durable. */
  enqueue(message: OutboxMessage): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the outbox is closed'));
    const refusal = this.refusal(message);
    if (refusal) {
      this.counters.refused++;
      this.emit('change');
      return Promise.reject(refusal);
    }
    const size = message.payload.length + Buffer.byteLength(message.topic);
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
    return new Promise<number>((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      this.commitSoon();
    });
  }

  /** Why `message` cannot be taken now, before anything is written. */
  private refusal(message: OutboxMessage): Error | undefined {
    const problem = topicProblem(message.topic, this.limits.topics ?? defaultTopicRules);
    if (problem) return new InvalidMessageError(`topic: ${problem}`);
    if (this.unwritable) return new StorageError(this.unwritable.code, `the outbox refuses new messages: ${this.unwritable.message}`);
    const size = message.payload.length + Buffer.byteLength(message.topic);
    if (size > this.limits.maxBytes || this.limits.maxMessages < 1) {
      return new OutboxFullError(`a message of ${size} bytes can never fit in outbox.maxBytes (${this.limits.maxBytes})`);
    }
    return undefined;
  }

  private dropOldest(): void {
    const oldest = this.live.values().next().value as Entry;
    this.log.append(encodeSettle(RecordType.Drop, oldest.seq), true);
    this.forget(oldest.seq);
    this.counters.dropped++;
  }

  /** The next durable message not yet handed out, in order. */
  next(): { seq: number; message: OutboxMessage } | undefined {
    while (this.sendHead < this.sendQueue.length) {
      const entry = this.live.get(this.sendQueue[this.sendHead++]);
      if (entry && !entry.aside) return entry;
    }
    if (this.sendHead > 0) (this.sendQueue = []), (this.sendHead = 0);
    return undefined;
  }

  /** The broker acknowledged it: it leaves the queue for good. */
  ack(seq: number): void {
    if (!this.live.has(seq)) return; // dropped while in flight
    this.settle(RecordType.Ack, seq);
    this.counters.delivered++;
    if (this.full && this.live.size < this.limits.maxMessages * FULL_CLEARS_BELOW && this.liveBytes < this.limits.maxBytes * FULL_CLEARS_BELOW) {
      this.full = false;
    }
  }

  /**
   * Moves a message that cannot be delivered out of the queue: `keep` stores it elsewhere
   * (the dead letters) and only once it has, the message is settled here. Resolves false
   * when the message is no longer queued.
   */
  async moveAside(seq: number, keep: (message: OutboxMessage) => Promise<void>): Promise<boolean> {
    const entry = this.live.get(seq);
    if (!entry || entry.aside) return false;
    entry.aside = true;
    try {
      await keep(entry.message);
    } catch (error) {
      entry.aside = false;
      throw error;
    }
    if (this.live.has(seq)) {
      this.settle(RecordType.Drop, seq);
      this.counters.deadLettered++;
    }
    this.emit('change');
    return true;
  }

  /** An ACK or DROP record: it need not be durable at once (losing one means a duplicate, as
   * QoS 1 allows), so it rides on the next commit, or is written unsynced a moment later. */
  private settle(type: RecordType.Ack | RecordType.Drop, seq: number): void {
    this.log.append(encodeSettle(type, seq), true);
    this.forget(seq);
    this.ackFlush ??= setTimeout(() => {
      this.ackFlush = undefined;
      if (this.waiting.length > 0 || this.unwritable) return; // the next commit (or probe) takes them
      this.log.commit(false).then(
        () => this.emit('change'),
        (error) => this.storageFailed(StorageError.from(error, 'writing the outbox log')),
      );
    }, ACK_FLUSH_MS);
  }

  /** The connection went away: everything not acknowledged is sent again, in order. */
  rewind(): void {
    this.sendQueue = [];
    this.sendHead = 0;
    for (const entry of this.live.values()) if (entry.durable && !entry.aside) this.sendQueue.push(entry.seq);
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

  /** One group commit: the log takes what is queued now, which is exactly this batch's records. */
  private async commitNow(): Promise<void> {
    this.commitScheduled = false;
    const batch = this.waiting;
    this.waiting = [];
    try {
      await this.log.commit();
    } catch (error) {
      const failure = StorageError.from(error, 'writing the outbox log');
      for (const w of batch) {
        this.forget(w.entry.seq);
        this.counters.refused++;
        w.reject(failure);
      }
      this.storageFailed(failure);
      return;
    }
    for (const w of batch) {
      w.entry.durable = true;
      this.counters.enqueued++;
      this.counters.payloadBytes += w.entry.message.payload.length;
      if (this.live.has(w.entry.seq)) this.sendQueue.push(w.entry.seq);
      w.resolve(w.entry.seq);
    }
    this.compactSendQueue();
    if (batch.length > 0) this.emit('ready');
    this.emit('change');
  }

  /** While nothing is sent (offline), drops leave dead seqs behind: keep only live ones. */
  private compactSendQueue(): void {
    if (this.sendQueue.length - this.sendHead <= this.live.size + SEND_QUEUE_SLACK) return;
    this.sendQueue = this.sendQueue.slice(this.sendHead).filter((seq) => this.live.has(seq));
    this.sendHead = 0;
  }

  /** The disk refused a write: refuse new messages until a probe writes again. */
  private storageFailed(failure: StorageError): void {
    const first = !this.unwritable;
    this.unwritable = failure;
    if (first) this.emit('change');
    if (this.closed || this.probeTimer) return;
    this.probeTimer = setTimeout(() => void this.probeStorage(), this.limits.storageProbeMs ?? 5000);
    this.probeTimer.unref();
  }

  private async probeStorage(): Promise<void> {
    this.probeTimer = undefined;
    try {
      await this.log.probe();
    } catch (error) {
      return this.storageFailed(StorageError.from(error, 'probing the outbox disk'));
    }
    this.unwritable = null;
    this.emit('change');
  }

  stats(): OutboxStats {
    return {
      depth: this.live.size,
      bytes: this.liveBytes,
      full: this.full,
      unwritable: this.unwritable ? `${this.unwritable.code}: ${this.unwritable.message}` : null,
      ...this.counters,
      bytesWritten: this.log.bytesWritten,
      syncs: this.log.syncs,
      recoveredMessages: this.recovery.recoveredMessages,
      corruptRegions: this.recovery.corruptRegions,
      tornBytes: this.recovery.tornBytes,
      sendQueueLength: this.sendQueue.length - this.sendHead,
    };
  }

  /** Writes what is queued (acks included) and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.ackFlush);
    clearTimeout(this.probeTimer);
    await this.commitNow();
    await this.log.close().catch(() => {}); // acks that cannot be written mean duplicates, not losses
  }
}
