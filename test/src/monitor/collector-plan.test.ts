import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectorPlan, retiredConnections } from '../../../src/monitor/collector-plan.js';
import { readSessionRecord, writeSessionRecord } from '../../../src/monitor/collector-sessions.js';
import { LogOnce } from '../../../src/monitor/log-once.js';

const shape = { baseId: 'gw/1', topicPrefix: 'devices', connections: 3, shared: true };

describe('collectorPlan', () => {
  it('uses one plain connection when the broker has no shared subscriptions or one is asked for', () => {
    const one = [{ clientId: 'gw/1-collector', topics: ['devices/+/monitoring', 'devices/+/inventory'] }];
    expect(collectorPlan({ ...shape, shared: false })).toEqual(one);
    expect(collectorPlan({ ...shape, connections: 1 })).toEqual(one);
  });

  it('puts N connections in one share group, a group name with no topic characters, inventories on the first only', () => {
    const plan = collectorPlan(shape);
    expect(plan.map((c) => c.clientId)).toEqual(['gw/1-collector-1', 'gw/1-collector-2', 'gw/1-collector-3']);
    expect(plan[0]?.topics).toEqual(['$share/gw_1-collector/devices/+/monitoring', 'devices/+/inventory']);
    expect(plan[2]?.topics).toEqual(['$share/gw_1-collector/devices/+/monitoring']);
  });
});

describe('retiredConnections', () => {
  it('names what an earlier, larger shape used and this one does not', () => {
    const before = collectorPlan({ ...shape, connections: 4 });
    expect(retiredConnections(before, collectorPlan(shape), shape).map((c) => c.clientId)).toEqual(['gw/1-collector-4']);
    expect(retiredConnections(collectorPlan(shape), collectorPlan(shape), shape)).toEqual([]);
  });

  it('with no record, retires the single connection of earlier versions when it is no longer used', () => {
    expect(retiredConnections(undefined, collectorPlan(shape), shape).map((c) => c.clientId)).toEqual(['gw/1-collector']);
    expect(retiredConnections(undefined, collectorPlan({ ...shape, connections: 1 }), shape)).toEqual([]);
  });
});

describe('the session record', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const file = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sessions-'));
    dirs.push(dir);
    return join(dir, 'collector-sessions.json');
  };

  it('reads back what was written', async () => {
    const path = file();
    await writeSessionRecord(path, collectorPlan(shape));
    expect(await readSessionRecord(path)).toEqual(collectorPlan(shape));
  });

  it('reads a missing, malformed, wrongly shaped or oversized record as no record', async () => {
    const path = file();
    expect(await readSessionRecord(path)).toBeUndefined();
    for (const text of ['{', '{"connections":[{"clientId":""}]}', `{"connections":[],"pad":"${'x'.repeat(70_000)}"}`]) {
      writeFileSync(path, text);
      expect(await readSessionRecord(path)).toBeUndefined();
    }
  });
});

describe('LogOnce', () => {
  it('lets a key through once per period, and forgets keys rather than growing past its bound', () => {
    let now = 0;
    const once = new LogOnce(60_000, 2, () => now);
    expect(once.allows('a')).toBe(true);
    expect(once.allows('a')).toBe(false);
    now = 60_000;
    expect(once.allows('a')).toBe(true);
    expect(once.allows('b')).toBe(true);
    expect(once.allows('c')).toBe(true); // the bound was reached: the memory starts afresh
    expect(once.allows('a')).toBe(true);
  });
});
