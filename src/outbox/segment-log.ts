import { mkdir, open, readdir, readFile, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAt, MAGIC, type LogRecord } from './record.js';

export interface RecoveryReport {
  /** records found in order, oldest segment first, each with the segment it lives in */
  records: Array<{ record: LogRecord; segment: number }>;
  /** stretches that failed their checksum and were skipped */
  corruptRegions: number;
  /** bytes cut off the end of a segment after a torn (partial) write */
  tornBytes: number;
}

const segmentName = (id: number) => `seg-${String(id).padStart(12, '0')}.log`;
const segmentId = (name: string) => Number(/^seg-(\d{12})\.log$/.exec(name)?.[1] ?? NaN);

/**
 * Append-only segment files. Nothing is ever rewritten: records are appended to the active
 * segment in group commits (one write and one fdatasync for everything queued meanwhile);
 * a segment is deleted whole once it and every older one hold nothing unsettled.
 */
export class SegmentLog {
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private committing: Promise<void> | undefined;
  private active!: { id: number; file: FileHandle; size: number };
  private readonly segments: number[] = [];
  private readonly unsettled = new Map<number, number>();
  /** bytes handed to write(): the figure for write amplification */
  bytesWritten = 0;
  syncs = 0;

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
  ) {}

  static async open(dir: string, segmentBytes: number): Promise<{ log: SegmentLog; recovered: RecoveryReport }> {
    await mkdir(dir, { recursive: true });
    const log = new SegmentLog(dir, segmentBytes);
    const ids = (await readdir(dir)).map(segmentId).filter((id) => Number.isFinite(id)).sort((a, b) => a - b);
    const recovered: RecoveryReport = { records: [], corruptRegions: 0, tornBytes: 0 };
    for (const id of ids) {
      await log.recoverSegment(id, recovered);
      log.segments.push(id);
    }
    // Always write to a fresh segment: a recovered one is never appended to.
    await log.openSegment((ids.at(-1) ?? 0) + 1);
    return { log, recovered };
  }

  private async recoverSegment(id: number, report: RecoveryReport): Promise<void> {
    const path = join(this.dir, segmentName(id));
    const buf = await readFile(path);
    let at = 0;
    while (at < buf.length) {
      const decoded = decodeAt(buf, at);
      if ('record' in decoded) {
        report.records.push({ record: decoded.record, segment: id });
        at = decoded.next;
        continue;
      }
      const resume = 'corrupt' in decoded ? nextValidRecord(buf, at + 1) : -1;
      if (resume < 0) {
        // The rest cannot be read: a write torn by a crash, or garbage up to the end.
        if ('corrupt' in decoded) report.corruptRegions++;
        report.tornBytes += buf.length - at;
        await truncate(path, at);
        break;
      }
      report.corruptRegions++;
      at = resume;
    }
  }

  private async openSegment(id: number): Promise<void> {
    const file = await open(join(this.dir, segmentName(id)), 'a');
    this.active = { id, file, size: 0 };
    this.segments.push(id);
  }

  /** The segment the next appended record goes to. */
  get activeSegment(): number {
    return this.active.id;
  }

  /** Queues a record for the next group commit. */
  append(record: Buffer): void {
    this.queued.push(record);
    this.queuedBytes += record.length;
  }

  /** Counts a message stored in `segment` that is not yet acknowledged or dropped. */
  hold(segment: number): void {
    this.unsettled.set(segment, (this.unsettled.get(segment) ?? 0) + 1);
  }

  /** The message in `segment` is settled (acknowledged or dropped). */
  release(segment: number): void {
    const left = (this.unsettled.get(segment) ?? 0) - 1;
    if (left > 0) this.unsettled.set(segment, left);
    else this.unsettled.delete(segment);
    this.deleteSettledSegments();
  }

  /** Deletes segments from the oldest on while they hold nothing unsettled. In order only:
   * a newer segment may hold the ACK records that settle an older one's messages. */
  deleteSettledSegments(): void {
    while (this.segments.length > 1 && this.segments[0] !== this.active.id && !this.unsettled.get(this.segments[0])) {
      const id = this.segments.shift()!;
      void unlink(join(this.dir, segmentName(id))).catch(() => {});
    }
  }

  /** Writes everything queued and, unless `sync` is false, syncs it; resolves when it is
   * written (and on disk). Calls are serialised. */
  async commit(sync = true): Promise<void> {
    while (this.committing) await this.committing;
    if (this.queued.length === 0) return;
    const batch = this.queued.length === 1 ? this.queued[0] : Buffer.concat(this.queued, this.queuedBytes);
    this.queued = [];
    this.queuedBytes = 0;
    this.committing = this.write(batch, sync);
    try {
      await this.committing;
    } finally {
      this.committing = undefined;
    }
  }

  private async write(batch: Buffer, sync: boolean): Promise<void> {
    await this.active.file.write(batch);
    if (sync) {
      await this.active.file.datasync();
      this.syncs++;
    }
    this.bytesWritten += batch.length;
    this.active.size += batch.length;
    if (this.active.size >= this.segmentBytes) {
      const full = this.active;
      await this.openSegment(full.id + 1);
      await full.file.close();
      this.deleteSettledSegments();
    }
  }

  async close(): Promise<void> {
    await this.commit();
    await this.active.file.close();
  }
}

/** The offset of the next record that checks out after a corrupt stretch, or -1. */
function nextValidRecord(buf: Buffer, from: number): number {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(MAGIC);
  for (let at = buf.indexOf(magic, from); at >= 0; at = buf.indexOf(magic, at + 1)) {
    if ('record' in decodeAt(buf, at)) return at;
  }
  return -1;
}
