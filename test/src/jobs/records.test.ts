import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JobRecords } from '../../../src/jobs/records.js';

describe('job records', () => {
  it('keeps the execution in flight in a small file and moves it to the history when done', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'running' });
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'reporting', status: 'SUCCEEDED' });
    const current = () => JSON.parse(readFileSync(join(dir, 'jobs-current.json'), 'utf8')).records;
    expect(current()).toMatchObject([{ key: 'a#1', state: 'reporting', status: 'SUCCEEDED' }]);
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'done' });
    expect(current()).toEqual([]);
    const reopened = await JobRecords.open(dir);
    expect(reopened.get('a#1')).toMatchObject({ state: 'done', status: 'SUCCEEDED' });
  });

  it('keeps the last 200 finished, and after a crash between the two writes the finished one wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    for (let i = 0; i < 205; i++) await records.put(`j${i}#1`, { jobId: `j${i}`, executionNumber: 1, state: 'done' });
    expect(records.all()).toHaveLength(200);
    expect(records.get('j0#1')).toBeUndefined();
    writeFileSync(join(dir, 'jobs-current.json'), JSON.stringify({ records: [{ key: 'j204#1', jobId: 'j204', executionNumber: 1, state: 'reporting', receivedAt: 0 }] }));
    const reopened = await JobRecords.open(dir);
    expect(reopened.all().filter((r) => r.key === 'j204#1')).toMatchObject([{ state: 'done' }]);
  });
});
