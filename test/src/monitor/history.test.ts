import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { History, HistoryLimitError, type HistoryLimits } from '../../../src/monitor/history.js';

const HOUR = 3_600_000;
const opened: History[] = [];
afterEach(() => {
  for (const h of opened.splice(0)) h.close();
});

function open(limits: Partial<HistoryLimits> = {}, file = join(mkdtempSync(join(tmpdir(), 'edgevisor-history-')), 'monitor.db')) {
  const h = History.open(file, { retentionMs: 24 * HOUR, maxBytes: 1 << 30, maxDevices: 100, maxKeysPerDevice: 100, ...limits });
  opened.push(h);
  return { h, file };
}

describe('metric history', () => {
  it('keeps devices, keys, the latest sample and series across a reopen', () => {
    const { h, file } = open();
    h.insert({ device: 'a', ts: 1000, values: { 'cpu-percent': 10, 'memory-used-bytes': 5 } });
    h.insert({ device: 'a', ts: 11_000, values: { 'cpu-percent': 20 } });
    h.insert({ device: 'b', ts: 5000, values: { 'cpu-percent': 1 } });
    h.close();
    const { h: again } = open({}, file);
    expect(again.deviceList()).toEqual([
      { id: 'a', lastSeen: 11_000, lastGapMs: 10_000 },
      { id: 'b', lastSeen: 5000, lastGapMs: null },
    ]);
    expect(again.keys('a')).toEqual(['cpu-percent', 'memory-used-bytes']);
    expect(again.latest('a')).toEqual({ ts: 11_000, values: { 'cpu-percent': 20 } });
    expect(again.series('a', 'cpu-percent', 0, 20_000, 100).map((p) => p.avg)).toEqual([10, 20]);
    again.insert({ device: 'a', ts: 21_000, values: { 'cpu-percent': 30 } });
    expect(again.keys('a')).toEqual(['cpu-percent', 'memory-used-bytes']);
  });

  it('counts the values stored since the file was made, across a reopen (a redelivered sample counts once)', () => {
    const { h, file } = open();
    h.insert({ device: 'a', ts: 1000, values: { 'cpu-percent': 10, 'memory-used-bytes': 5 } });
    h.insert({ device: 'a', ts: 1000, values: { 'cpu-percent': 10, 'memory-used-bytes': 5 } }); // QoS 1 again: stored once
    h.insertMany([{ device: 'b', ts: 2000, values: { 'cpu-percent': 1 } }]);
    expect(h.stats.valuesStored).toBe(3);
    h.close();
    const { h: again } = open({}, file);
    expect(again.stats.valuesStored).toBe(3);
    again.insert({ device: 'a', ts: 3000, values: { 'cpu-percent': 30 } });
    again.prune(3 * 86_400_000); // retention deletes the points, not the count of what was stored
    expect(again.stats.valuesStored).toBe(4);
    again.close();
    expect(open({}, file).h.stats.valuesStored).toBe(4);
  });

  it('downsamples a series to min, max and average per bucket, never more buckets than asked', () => {
    const { h } = open();
    for (let i = 0; i < 1000; i++) h.insert({ device: 'a', ts: i * 1000, values: { v: i } });
    const points = h.series('a', 'v', 0, 100_000, 10);
    expect(points).toHaveLength(10);
    expect(points[0]).toEqual({ ts: 0, min: 0, max: 9, avg: 4.5, count: 10 });
    expect(points[9]).toEqual({ ts: 90_000, min: 90, max: 99, avg: 94.5, count: 10 });
    expect(h.series('a', 'v', 500_000, 510_000, 1000).map((p) => p.min)).toEqual([500, 501, 502, 503, 504, 505, 506, 507, 508, 509]);
    expect(h.series('a', 'missing', 0, 10, 10)).toEqual([]);
  });

  it('answers buckets of a minute or more from whole minutes of the rollup, with the same figures as the raw points', () => {
    const { h } = open();
    for (let i = 0; i < 1000; i++) h.insert({ device: 'a', ts: i * 1000, values: { v: i } });
    h.insert({ device: 'a', ts: 5000, values: { v: 1e9 } }); // a duplicate delivery is ignored
    const points = h.series('a', 'v', 0, 1_000_000, 10); // 100 s asked: 120 s buckets
    expect(points.length).toBeLessThanOrEqual(10);
    expect(points[0]).toEqual({ ts: 0, min: 0, max: 119, avg: 59.5, count: 120 });
    expect(points.at(-1)).toEqual({ ts: 960_000, min: 960, max: 999, avg: 979.5, count: 40 });
    expect(points.reduce((n, p) => n + p.count, 0)).toBe(1000);
  });

  it('deletes points older than the retention, and the oldest ones when over its byte bound', () => {
    const { h } = open({ retentionMs: 10 * HOUR });
    for (let hour = 0; hour < 20; hour++) h.insert({ device: 'a', ts: hour * HOUR, values: { v: hour } });
    h.prune(20 * HOUR);
    expect(h.series('a', 'v', 0, 20 * HOUR, 100).map((p) => p.min)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    const { h: small } = open({ maxBytes: 256 * 1024 });
    const keys = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`key-${i}`, i]));
    for (let s = 0; s < 2000; s++) small.insert({ device: 'a', ts: s * 1000, values: keys });
    expect(small.usedBytes()).toBeGreaterThan(256 * 1024);
    const { usedBytes } = small.prune(2000 * 1000);
    expect(usedBytes).toBeLessThanOrEqual(256 * 1024);
    const left = small.series('a', 'key-0', 0, 2_000_000, 2000);
    expect(left.length).toBeGreaterThan(0);
    expect(left.at(-1)!.ts).toBe(1_999_000); // the newest stay
    expect(left[0]!.ts).toBeGreaterThan(0); // the oldest went
  });

  it('refuses devices and keys beyond its bounds and keeps the rest', () => {
    const { h } = open({ maxDevices: 2, maxKeysPerDevice: 2 });
    expect(h.insert({ device: 'a', ts: 1, values: { x: 1, y: 2, z: 3 } })).toBe(2);
    expect(h.stats.valuesRefused).toBe(1);
    h.insert({ device: 'b', ts: 1, values: { x: 1 } });
    expect(() => h.insert({ device: 'c', ts: 1, values: { x: 1 } })).toThrow(HistoryLimitError);
    expect(h.deviceList().map((d) => d.id)).toEqual(['a', 'b']);
  });
});
