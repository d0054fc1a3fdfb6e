import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { History } from '../../../src/monitor/history.js';
import { HistoryWriter } from '../../../src/monitor/history-writer.js';

const limits = { retentionMs: 86_400_000, maxBytes: 1 << 30, maxDevices: 3, maxKeysPerDevice: 100 };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function open() {
  const file = join(mkdtempSync(join(tmpdir(), 'edgevisor-writer-')), 'monitor.db');
  const writer = await HistoryWriter.start(file, limits);
  const reader = History.openReader(file, limits);
  cleanups.push(
    () => reader.close(),
    () => writer.close(),
  );
  return { writer, reader };
}

describe('history writer thread', () => {
  it('commits inserts asked at once, each with its own outcome, and the API reads them on its own connection', async () => {
    const { writer, reader } = await open();
    const outcomes = await Promise.all(
      ['a', 'b', 'c', 'd'].map((device, i) => writer.insert([{ device, ts: 1000 + i, values: { 'cpu-percent': i, 'memory-used-bytes': 10 * i } }])),
    );
    // the fourth device is over maxDevices: refused alone, the others stored
    expect(outcomes.map(([o]) => o)).toEqual([{ stored: 2 }, { stored: 2 }, { stored: 2 }, { refused: 'history holds 3 devices (the limit)' }]);
    expect(reader.deviceList().map((d) => d.id)).toEqual(['a', 'b', 'c']);
    expect(reader.has('b')).toBe(true);
    expect(reader.has('d')).toBe(false);
    expect(reader.keys('c')).toEqual(['cpu-percent', 'memory-used-bytes']);
    expect(reader.latest('c')).toEqual({ ts: 1002, values: { 'cpu-percent': 2, 'memory-used-bytes': 20 } });
    expect(reader.series('b', 'cpu-percent', 0, 10_000, 10).map((p) => p.avg)).toEqual([1]);
    expect(writer.stats.valuesStored).toBe(6);
  });

  it('refuses requests once closed, and a closed writer says so instead of hanging', async () => {
    const { writer } = await open();
    await writer.insert([{ device: 'a', ts: 1, values: { x: 1 } }]);
    await writer.close();
    await expect(writer.insert([{ device: 'a', ts: 2, values: { x: 2 } }])).rejects.toThrow(/closing|exited/);
  });
});
