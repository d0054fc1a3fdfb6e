import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Low, LowSync } from 'lowdb';
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
  receivedAt: number;
  finishedAt?: number;
}

export const executionKey = (jobId: string, executionNumber: number) => `${jobId}#${executionNumber}`;

/** Bounded history: the oldest finished records go first. */
const MAX_HISTORY = 200;

type Data = { records: JobRecord[] };

/**
 * Two lowdb files in stateDir, each written atomically (a temporary file, then a rename):
 * jobs-current.json holds the execution in flight, jobs.json the finished ones. The first
 * is tiny and written synchronously at each step of a job (a fraction of a millisecond, and
 * no thread-pool round trips on the job's path); the history is written asynchronously,
 * once per job.
 */
export class JobRecords {
  private constructor(
    private readonly current: LowSync<Data>,
    private readonly history: Low<Data>,
  ) {}

  static async open(stateDir: string): Promise<JobRecords> {
    await mkdir(stateDir, { recursive: true });
    const [{ Low, LowSync }, { JSONFile, JSONFileSync }] = await Promise.all([import('lowdb'), import('lowdb/node')]);
    // Not the presets: under NODE_ENV=test they silently keep the data in memory only.
    const current = new LowSync<Data>(new JSONFileSync(join(stateDir, 'jobs-current.json')), { records: [] });
    current.read();
    const history = new Low<Data>(new JSONFile(join(stateDir, 'jobs.json')), { records: [] });
    await history.read();
    for (const db of [current, history]) if (!Array.isArray(db.data?.records)) db.data = { records: [] };
    // A crash between the two writes of "done" leaves a record in both: the finished one wins.
    const finished = new Set(history.data.records.map((r) => r.key));
    const stale = current.data.records.filter((r) => finished.has(r.key));
    if (stale.length > 0) {
      current.data.records = current.data.records.filter((r) => !finished.has(r.key));
      current.write();
    }
    return new JobRecords(current, history);
  }

  all(): JobRecord[] {
    return [...this.history.data.records, ...this.current.data.records];
  }

  get(key: string): JobRecord | undefined {
    return this.current.data.records.find((r) => r.key === key) ?? this.history.data.records.find((r) => r.key === key);
  }

  /** Creates or changes a record, then writes the file(s) it lives in. */
  async put(key: string, change: Partial<JobRecord> & Pick<JobRecord, 'jobId' | 'executionNumber'>): Promise<JobRecord> {
    const inFlight = this.current.data.records;
    const finished = this.history.data.records;
    const at = inFlight.findIndex((r) => r.key === key);
    const before = at >= 0 ? inFlight[at] : finished.find((r) => r.key === key);
    const record: JobRecord = { key, state: 'running', receivedAt: Date.now(), ...before, ...change };
    if (record.state !== 'done') {
      if (at >= 0) inFlight[at] = record;
      else inFlight.push(record);
      this.current.write();
      return record;
    }
    if (at >= 0) inFlight.splice(at, 1);
    const old = finished.findIndex((r) => r.key === key);
    if (old >= 0) finished.splice(old, 1);
    finished.push(record);
    if (finished.length > MAX_HISTORY) finished.splice(0, finished.length - MAX_HISTORY);
    // history first: a crash in between leaves the record in both, and open() keeps the finished one
    await this.history.write();
    if (at >= 0) this.current.write();
    return record;
  }
}
