import { mkdir, open, readdir, readFile, statfs, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAt, MAGIC, type LogRecord } from './record.js';
import { StorageError } from './storage-error.js';

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

/** Free space the disk must show before a probe write is tried. */
const PROBE_FREE_BYTES = 64 * 1024;
const PROBE_BYTES = 4096;

interface Queued {
  bytes: Buffer;
  /** an ACK or DROP record: kept for the next commit when this one fails */
  settles: boolean;
}

/**
 * Append-only segment files. Nothing is ever rewritten: records are appended to the active
 * segment in group commits (one write and one fdatasync for everything queued meanwhile);
 * a segment is deleted whole once it and every older one hold nothing unsettled.
 *
 * A commit takes what is queued at the moment it is called, so its caller knows exactly
 * which records it covers; commits run one after the other. A write that is short or fails
 * is cut back off the file (no torn record stays behind) and rejects with a StorageError.
 */
export class SegmentLog {
  private queued: Queued[] = [];
  private chain: Promise<void> = Promise.resolve();
  private unsynced = false;
  /** nothing is deleted until the replay has counted every segment's holds */
  private replaying = true;
  private active!: { id: number; file: FileHandle; size: number };
  private readonly segments: number[] = [];
  private readonly unsettled = new Map<number, number>();
  /** bytes written to the files: the figure for write amplification */
  bytesWritten = 0;
  syncs = 0;

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
  ) {}

  static async open(dir: string, segmentBytes: number): Promise<{ log: SegmentLog; recovered: RecoveryReport }> {
    await mkdir(dir, { recursive: true });
    const log = new SegmentLog(dir, segmentBytes);
    const ids = (await readdir(dir))
      .map(segmentId)
      .filter((id) => Number.isFinite(id))
      .sort((a, b) => a - b);
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

  /** The segment the next appended record goes to (or a later one, if it rotates first). */
  get activeSegment(): number {
    return this.active.id;
  }

  /** Queues a record for the next group commit. */
  append(record: Buffer, settles = false): void {
    this.queued.push({ bytes: record, settles });
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

  /** The replay has held every message it kept: settled segments may go from now on. */
  replayed(): void {
    this.replaying = false;
    this.deleteSettledSegments();
  }

  /** Deletes segments from the oldest on while they hold nothing unsettled. In order only:
   * a newer segment may hold the ACK records that settle an older one's messages. */
  private deleteSettledSegments(): void {
    if (this.replaying) return;
    while (this.segments.length > 1 && this.segments[0] !== this.active.id && !this.unsettled.get(this.segments[0])) {
      const id = this.segments.shift()!;
      void unlink(join(this.dir, segmentName(id))).catch(() => {});
    }
  }

  /** Writes everything queued now and, unless `sync` is false, syncs it (and whatever an
   * earlier unsynced commit wrote); resolves once it is written (and on disk). */
  commit(sync = true): Promise<void> {
    const batch = this.queued;
    this.queued = [];
    const run = this.chain.then(() => this.write(batch, sync));
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(batch: Queued[], sync: boolean): Promise<void> {
    const start = this.active.size;
    try {
      if (batch.length > 0) {
        const bytes = batch.length === 1 ? batch[0].bytes : Buffer.concat(batch.map((q) => q.bytes));
        await writeAll(this.active.file, bytes);
        this.active.size += bytes.length;
        this.bytesWritten += bytes.length;
        this.unsynced = true;
      }
      if (sync && this.unsynced) {
        await this.active.file.datasync();
        this.syncs++;
        this.unsynced = false;
      }
    } catch (error) {
      // Cut the partial batch off, so the next records follow whole ones; settle records go again.
      await this.active.file.truncate(start).catch(() => {});
      this.active.size = start;
      this.queued.unshift(...batch.filter((q) => q.settles));
      throw StorageError.from(error, batch.length > 0 ? 'writing the outbox log' : 'syncing the outbox log');
    }
    if (this.active.size >= this.segmentBytes) await this.rotate();
  }

  /** A new active segment; when even that cannot be created, the full one grows a while longer. */
  private async rotate(): Promise<void> {
    const full = this.active;
    try {
      await this.openSegment(full.id + 1);
    } catch {
      return;
    }
    await full.file.close().catch(() => {});
    this.deleteSettledSegments();
  }

  /** Whether the disk takes writes again: enough free space, and a small file written and synced. */
  async probe(): Promise<void> {
    try {
      const fs = await statfs(this.dir);
      const free = fs.bavail * fs.bsize;
      if (free < PROBE_FREE_BYTES) throw Object.assign(new Error(`${free} bytes free`), { code: 'ENOSPC' });
      const path = join(this.dir, 'probe.tmp');
      const file = await open(path, 'w');
      try {
        await writeAll(file, Buffer.alloc(PROBE_BYTES));
        await file.datasync();
      } finally {
        await file.close();
        await unlink(path).catch(() => {});
      }
    } catch (error) {
      throw StorageError.from(error, 'probing the outbox disk');
    }
    if (this.queued.length > 0) await this.commit(false);
  }

  async close(): Promise<void> {
    try {
      await this.commit();
    } finally {
      await this.active.file.close();
    }
  }
}

/** FileHandle.write may write fewer bytes than asked without an error (a disk filling up). */
async function writeAll(file: FileHandle, bytes: Buffer): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done);
    if (bytesWritten <= 0) throw Object.assign(new Error(`wrote ${done} of ${bytes.length} bytes`), { code: 'ENOSPC' });
    done += bytesWritten;
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
