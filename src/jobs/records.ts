import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { Low } from 'lowdb';
import type { GroupIdentity } from './process-group.js';
import type { StatusDetails } from './status-details.js';

/** What the agent remembers of one execution (jobId + executionNumber), in
 * <stateDir>/jobs.json (lowdb, written atomically). It is what makes a job run at most once
 * and its result reach the service at least once, across restarts. */
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
const MAX_RECORDS = 200;

export class JobRecords {
  private constructor(private readonly db: Low<{ records: JobRecord[] }>) {}

  static async open(stateDir: string): Promise<JobRecords> {
    await mkdir(stateDir, { recursive: true });
    const { JSONFilePreset } = await import('lowdb/node');
    const db = await JSONFilePreset<{ records: JobRecord[] }>(join(stateDir, 'jobs.json'), { records: [] });
    if (!Array.isArray(db.data.records)) db.data = { records: [] };
    return new JobRecords(db);
  }

  all(): JobRecord[] {
    return this.db.data.records;
  }

  get(key: string): JobRecord | undefined {
    return this.db.data.records.find((r) => r.key === key);
  }

  /** Creates or changes a record, then writes the file. */
  async put(key: string, change: Partial<JobRecord> & Pick<JobRecord, 'jobId' | 'executionNumber'>): Promise<JobRecord> {
    const records = this.db.data.records;
    let record = records.find((r) => r.key === key);
    if (!record) {
      record = { key, state: 'running', receivedAt: Date.now(), ...change };
      records.push(record);
    } else Object.assign(record, change);
    while (records.length > MAX_RECORDS) {
      const oldest = records.findIndex((r) => r.state === 'done');
      if (oldest < 0) break;
      records.splice(oldest, 1);
    }
    await this.db.write();
    return record;
  }
}
