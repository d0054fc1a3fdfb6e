import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../../src/config/schema.js';

const parse = (monitor: Record<string, unknown>) => ConfigSchema.safeParse({ monitor });

describe('monitor config', () => {
  it('has the documented defaults', () => {
    const config = ConfigSchema.parse({});
    expect(config.monitor).toMatchObject({ enabled: false, intervalSeconds: 10, topicPrefix: 'devices', collect: false, retentionDays: 7, alerts: [] });
  });

  it('takes alert rules per the contract, with defaults for severity, forSeconds and devices', () => {
    const result = parse({
      alerts: [
        { id: 'hot', metric: 'cpu-percent', op: '>=', threshold: 90, clear: 80 },
        { id: 'fleet', metric: 'disk-root-used-percent', op: '>', threshold: 95, forSeconds: 300, severity: 'critical', devices: ['pi-1', 'pi-2'] },
      ],
    });
    expect(result.success).toBe(true);
    expect(result.data!.monitor.alerts[0]).toEqual({
      id: 'hot',
      metric: 'cpu-percent',
      op: '>=',
      threshold: 90,
      clear: 80,
      forSeconds: 0,
      severity: 'warning',
      devices: 'self',
    });
  });

  it.each([
    [{ id: 'x', metric: 'cpu-percent', op: '=>', threshold: 1 }, 'op'],
    [{ id: 'x', metric: 'cpu-percent', op: '>', threshold: 90, clear: 95 }, 'clear'],
    [{ id: 'x', metric: 'cpu-percent', op: '<', threshold: 10, clear: 5 }, 'clear'],
    [{ id: 'x', metric: 'CPU %', op: '>', threshold: 1 }, 'metric'],
    [{ id: 'x', metric: 'cpu-percent', op: '>', threshold: 1, devices: 'some' }, 'devices'],
    [{ id: 'x', metric: 'cpu-percent', op: '>', threshold: 1, extra: true }, ''],
  ])('refuses the rule %j with a message about %s', (rule, field) => {
    const result = parse({ alerts: [rule] });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path.join('.')).toContain(`alerts.0${field ? `.${field}` : ''}`);
  });

  it('refuses a topic prefix with MQTT wildcards', () => {
    expect(parse({ topicPrefix: 'devices/+' }).success).toBe(false);
  });

  it('opens 4 collector connections unless told otherwise, and refuses a count outside 1–64', () => {
    expect(ConfigSchema.parse({}).monitor.collectorConnections).toBe(4);
    expect(parse({ collectorConnections: 64 }).success).toBe(true);
    for (const bad of [0, 65, 2.5, '4']) expect(parse({ collectorConnections: bad }).success, String(bad)).toBe(false);
  });
});
