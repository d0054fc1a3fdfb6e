import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Low } from 'lowdb';
import type { GroupIdentity } from './process-group.js';
import type { StatusDetails } from './status-details.js';

/** What the agent remembers of one execution (jobId + executionNumber). It is what makes a
 * job run at most once and its result reach the service at least once, across restarts. */
export interface JobRecord {
  key: string;
  jobId: string;
  executionNumber: number;
  /** running: steps may be running; reporting: result computed, not yet acknowledged; done: acknowledged */
  state: 'running' | 'reporting' | 'done';
  /** the process group of the step that runs, for killing what a crash left behind */
  group?: GroupIdentity;
  status?: 'SUCCEEDED' | 'FAILED' | 'REJECTED' | 'CANCELED';
  statusDetails?: StatusDetails;
  reason?: string | null;
  /** the service had ended the execution (TIMED_OUT, CANCELED…) before it took `status`; the
   * status stays what was computed, so an offer of it again sends that once more */
  endedBy?: string;
  receivedAt: number;
  finishedAt?: number;
}

export const executionKey = (jobId: string, executionNumber: number) => `${jobId}#${executionNumber}`;

/** Bounded history: the oldest finished records go first. */
const MAX_HISTORY = 200;

type Data = { records: JobRecord[] };

/** The journal is rewritten from what is in flight once it grows past this. */
const COMPACT_BYTES = 256 * 1024;
/** Finished records reach jobs.json in batches, this long after the first of a batch. */
const HISTORY_DELAY_MS = 1000;

/**
 * Two files in stateDir. jobs-inflight.jsonl holds the execution in flight as a journal: one
 * JSON line per change, appended with one write to a file kept open (the last line of a key
 * wins; a torn last line from a crash is skipped), and emptied once nothing is in flight. A
 * write returns once the kernel has the line, so a kill -9 of the agent loses nothing (a
 * power cut may, within the kernel's writeback window, as it may with any unsynced write).
 * It replaced a JSON file rewritten atomically (temporary file, write, rename) at each step
 * of a job: those were ~3 ms of a job's CPU on the way to its result. jobs.json (lowdb,
 * written atomically) keeps the last 200 finished ones; it is written in batches, a second
 * after a job finishes, so a burst of jobs does not rewrite it once per job. Until it is,
 * the journal keeps the finished job's last state: a crash then only means the result is
 * sent once more, and "already <status>" counts as delivered.
 */
export class JobRecords {
  /** finished executions not yet in jobs.json: the journal keeps them meanwhile */
  private readonly unsaved = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly journal: string,
    private fd: number,
    private readonly inFlight: Map<string, JobRecord>,
    private readonly history: Low<Data>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** `onError` hears of a failed history write (it is tried again with the next batch). */
  static async open(stateDir: string, onError: (error: unknown) => void = () => {}): Promise<JobRecords> {
    await mkdir(stateDir, { recursive: true });
    const [{ Low }, { JSONFile }] = await Promise.all([import('lowdb'), import('lowdb/node')]);
    // Not the preset: under NODE_ENV=test it silently keeps the data in memory only.
    const history = new Low<Data>(new JSONFile(join(stateDir, 'jobs.json')), { records: [] });
    await history.read();
    if (!Array.isArray(history.data?.records)) history.data = { records: [] };
    const journal = join(stateDir, 'jobs-inflight.jsonl');
    const inFlight = new Map<string, JobRecord>();
    for (const record of [...readLegacy(join(stateDir, 'jobs-current.json')), ...readJournal(journal)]) {
      if (record.state === 'done') inFlight.delete(record.key);
      else inFlight.set(record.key, record);
    }
    // A crash between the history write and the journal's "done" leaves both: the finished one wins.
    for (const r of history.data.records) inFlight.delete(r.key);
    writeAtomically(journal, inFlight);
    rmSync(join(stateDir, 'jobs-current.json'), { force: true });
    return new JobRecords(journal, openSync(journal, 'a'), inFlight, history, onError);
  }

  all(): JobRecord[] {
    return [...this.history.data.records, ...this.inFlight.values()];
  }

  get(key: string): JobRecord | undefined {
    return this.inFlight.get(key) ?? this.history.data.records.find((r) => r.key === key);
  }

  /** Creates or changes a record, then writes it where it lives (a finished one: soon, see flush). */
  async put(key: string, change: Partial<JobRecord> & Pick<JobRecord, 'jobId' | 'executionNumber'>): Promise<JobRecord> {
    const finished = this.history.data.records;
    const before = this.inFlight.get(key) ?? finished.find((r) => r.key === key);
    const record: JobRecord = { key, state: 'running', receivedAt: Date.now(), ...before, ...change };
    if (record.state !== 'done') {
      this.inFlight.set(key, record);
      this.append(record);
      return record;
    }
    this.inFlight.delete(key);
    const old = finished.findIndex((r) => r.key === key);
    if (old >= 0) finished.splice(old, 1);
    finished.push(record);
    if (finished.length > MAX_HISTORY) finished.splice(0, finished.length - MAX_HISTORY);
    this.unsaved.add(key);
    this.timer ??= setTimeout(() => void this.flush().catch(this.onError), HISTORY_DELAY_MS).unref();
    return record;
  }

  /** Writes the finished records to jobs.json now, then lets the journal forget them. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing.catch(() => {});
    if (this.unsaved.size === 0) return;
    const batch = [...this.unsaved];
    this.unsaved.clear();
    // history first: a crash in between leaves the record in both, and open() keeps the finished one
    this.writing = this.history.write().then(
      () => {
        if (this.inFlight.size === 0 && this.unsaved.size === 0) ftruncateSync(this.fd, 0);
        else for (const key of batch) this.append({ key, state: 'done' });
      },
      (error: unknown) => {
        for (const key of batch) this.unsaved.add(key);
        throw error;
      },
    );
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  private append(line: Partial<JobRecord>): void {
    writeWhole(this.fd, Buffer.from(`${JSON.stringify(line)}\n`));
    if (this.unsaved.size === 0 && !this.writing && fstatSync(this.fd).size > COMPACT_BYTES) {
      writeAtomically(this.journal, this.inFlight);
      closeSync(this.fd);
      this.fd = openSync(this.journal, 'a');
    }
  }
}

/**
 * Writes all of `bytes` at the end of the file: a write may take fewer bytes than asked without
 * failing (a full disk). What cannot be written whole is cut off again, and the error thrown.
 */
function writeWhole(fd: number, bytes: Buffer): void {
  const size = fstatSync(fd).size;
  try {
    for (let done = 0; done < bytes.length; ) {
      const written = writeSync(fd, bytes, done);
      if (written === 0) throw Object.assign(new Error('no space left on device: the journal line was not written'), { code: 'ENOSPC' });
      done += written;
    }
  } catch (error) {
    ftruncateSync(fd, size);
    throw error;
  }
}

/** The journal's records, line by line; what cannot be parsed (a line torn by a crash) is skipped. */
function readJournal(path: string): JobRecord[] {
  if (!existsSync(path)) return [];
  const records: JobRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      const record = JSON.parse(line) as JobRecord;
      if (record && typeof record.key === 'string') records.push(record);
    } catch {
      // torn or empty
    }
  }
  return records;
}

/** jobs-current.json of earlier versions ({records: [...]}), taken over once. */
function readLegacy(path: string): JobRecord[] {
  try {
    const records = (JSON.parse(readFileSync(path, 'utf8')) as Partial<Data>).records;
    return Array.isArray(records) ? records : [];
  } catch {
    return [];
  }
}

function writeAtomically(path: string, records: Map<string, JobRecord>): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, [...records.values()].map((r) => `${JSON.stringify(r)}\n`).join(''));
  renameSync(temporary, path);
}
