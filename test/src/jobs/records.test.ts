import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JobRecords } from '../../../src/jobs/records.js';
import { canMount, mountTmpfs } from '../../support/tmpfs.js';

describe('job records', () => {
  const journal = (dir: string) => join(dir, 'jobs-inflight.jsonl');
  const lines = (dir: string) =>
    readFileSync(journal(dir), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('journals the execution in flight, on disk at once, and moves it to the history when done', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'running' });
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'reporting', status: 'SUCCEEDED' });
    expect(lines(dir).at(-1)).toMatchObject({ key: 'a#1', state: 'reporting', status: 'SUCCEEDED' });
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'done' });
    expect(records.get('a#1')).toMatchObject({ state: 'done' });
    // until the history is written, the journal keeps it: a restart would send the result again
    expect(lines(dir).at(-1)).toMatchObject({ key: 'a#1', state: 'reporting' });
    await records.flush();
    expect(readFileSync(journal(dir), 'utf8')).toBe(''); // nothing in flight: emptied
    const reopened = await JobRecords.open(dir);
    expect(reopened.get('a#1')).toMatchObject({ state: 'done', status: 'SUCCEEDED' });
    expect(reopened.all()).toHaveLength(1);
  });

  it('skips a line torn by a crash, and keeps the last state of each execution', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'running' });
    await records.put('a#1', { jobId: 'a', executionNumber: 1, group: { pgid: 42, bootId: 'b', startTicks: 1 } });
    appendFileSync(journal(dir), '{"key":"a#1","jobId":"a","executionNumber":1,"state":"repor');
    const reopened = await JobRecords.open(dir);
    expect(reopened.all()).toMatchObject([{ key: 'a#1', state: 'running', group: { pgid: 42 } }]);
    // reopening rewrote the journal without the torn line, and appends go on from there
    await reopened.put('b#1', { jobId: 'b', executionNumber: 1, state: 'running' });
    expect(lines(dir).map((r) => r.key)).toEqual(['a#1', 'b#1']);
  });

  it('takes over the in-flight file of earlier versions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    writeFileSync(
      join(dir, 'jobs-current.json'),
      JSON.stringify({ records: [{ key: 'old#1', jobId: 'old', executionNumber: 1, state: 'running', receivedAt: 0 }] }),
    );
    const records = await JobRecords.open(dir);
    expect(records.get('old#1')).toMatchObject({ state: 'running' });
    expect(existsSync(join(dir, 'jobs-current.json'))).toBe(false);
    expect((await JobRecords.open(dir)).get('old#1')).toMatchObject({ state: 'running' });
  });

  it('keeps the last 200 finished, and after a crash between the two writes the finished one wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    for (let i = 0; i < 205; i++) await records.put(`j${i}#1`, { jobId: `j${i}`, executionNumber: 1, state: 'done' });
    await records.flush();
    expect(records.all()).toHaveLength(200);
    expect(records.get('j0#1')).toBeUndefined();
    appendFileSync(journal(dir), `${JSON.stringify({ key: 'j204#1', jobId: 'j204', executionNumber: 1, state: 'reporting', receivedAt: 0 })}\n`);
    const reopened = await JobRecords.open(dir);
    expect(reopened.all().filter((r) => r.key === 'j204#1')).toMatchObject([{ state: 'done' }]);
  });

  it('a job that starts while the history is written keeps its line; the finished one gets a "done" mark', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-records-'));
    const records = await JobRecords.open(dir);
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'reporting', status: 'SUCCEEDED' });
    await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'done' });
    await records.put('b#1', { jobId: 'b', executionNumber: 1, state: 'running' });
    await records.flush();
    expect(lines(dir).map((r) => `${r.key} ${r.state}`)).toEqual(['a#1 reporting', 'b#1 running', 'a#1 done']);
    const reopened = await JobRecords.open(dir);
    expect(reopened.all().map((r) => `${r.key} ${r.state}`)).toEqual(['a#1 done', 'b#1 running']);
  });
});

describe.runIf(canMount)('job records on a full disk', () => {
  it('refuses a record it cannot write whole, and leaves no torn line behind', async () => {
    const disk = mountTmpfs('64k');
    try {
      const records = await JobRecords.open(disk.dir);
      await records.put('a#1', { jobId: 'a', executionNumber: 1, state: 'running' });
      // leave less than a page free: the next line can be written only in part, or not at all
      const filler = openSync(join(disk.dir, 'filler'), 'w');
      try {
        while (writeSync(filler, Buffer.alloc(1024)) > 0);
      } catch {
        // ENOSPC: full
      }
      closeSync(filler);
      const big = 'x'.repeat(16 * 1024);
      await expect(records.put('b#1', { jobId: 'b', executionNumber: 1, state: 'running', reason: big })).rejects.toThrow(/ENOSPC|no space/i);
      const journal = readFileSync(join(disk.dir, 'jobs-inflight.jsonl'), 'utf8');
      expect(journal.endsWith('\n')).toBe(true);
      expect(journal.split('\n').filter(Boolean)).toHaveLength(1);
      rmSync(join(disk.dir, 'filler'));
      const reopened = await JobRecords.open(disk.dir);
      expect(reopened.all().map((r) => r.key)).toEqual(['a#1']);
    } finally {
      disk.unmount();
    }
  });
});
