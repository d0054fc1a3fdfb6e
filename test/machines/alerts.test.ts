import { afterEach, describe, expect, it } from 'vitest';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { alertLevelOf, type AlertNotice, type AlertRule } from '../../machines/alert.js';
import { alertsMachine, type AlertRecord, type AlertsInput, type NotifierCommand } from '../../machines/alerts.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise } from '../support/fakes.js';

const T0 = 1_700_000_000_000;
const cpu: AlertRule = { id: 'cpu', metric: 'cpu-percent', op: '>', threshold: 90, clear: 80, severity: 'warning' };

const running: Array<{ stop(): void }> = [];
afterEach(() => {
  while (running.length) running.pop()!.stop();
});

async function start(input: Partial<AlertsInput> = {}, restored: Record<string, AlertRecord> = {}) {
  const notifier = fakeCallback();
  const restore = fakePromise<Record<string, AlertRecord>>();
  const clock = new SimulatedClock();
  const machine = alertsMachine.provide({ actors: { notifier: notifier.logic, restoreAlerts: restore.logic } });
  const actor = createActor(machine, { input: { rules: [cpu], thingName: 'box-1', ...input }, clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  running.push(actor);
  const sample = (device: string, seconds: number, values: Record<string, number>) =>
    actor.send({ type: 'alerts.sample', sample: { device, ts: T0 + seconds * 1000, values } });
  const commands = () => notifier.current.received as NotifierCommand[];
  const notices = () => commands().flatMap((c) => (c.type === 'alerts.notice' ? [c.notice] : []));
  const brief = (n: AlertNotice) => `${n.kind} ${n.device}@${(n.at - T0) / 1000}${n.suppressed ? ` (+${n.suppressed} suppressed)` : ''}`;
  const children = () =>
    Object.keys(actor.getSnapshot().children)
      .filter((id) => id.startsWith('alert:'))
      .sort();
  const levelOf = (id: string) => alertLevelOf((actor.getSnapshot().children[id]?.getSnapshot() as { value?: unknown } | undefined)?.value);
  const api = { actor, clock, notifier, restore, errors, sample, commands, notices, brief, children, levelOf, ctx: () => actor.getSnapshot().context };
  return {
    ...api,
    /** resolves the restore with `restored` and lets the manager take over */
    async ready() {
      restore.resolve(restored);
      await flush();
      return api;
    },
  };
}

describe('alerts manager', () => {
  it('spawns one alert per rule × selected device; "self" is thingName, "all" any, a list only those', async () => {
    const rules: AlertRule[] = [
      { ...cpu, id: 'self-cpu' },
      { ...cpu, id: 'fleet-cpu', devices: 'all' },
      { id: 'mem', metric: 'memory-used-percent', op: '>', threshold: 95, devices: ['box-2', 'box-3'] },
    ];
    const t = await (await start({ rules })).ready();
    t.sample('box-1', 0, { 'cpu-percent': 10, 'memory-used-percent': 99 });
    t.sample('box-2', 0, { 'cpu-percent': 10, 'memory-used-percent': 50 });
    t.sample('box-4', 0, { 'memory-used-percent': 99 }); // no cpu-percent: no fleet-cpu alert yet
    await flush();
    expect(t.children()).toEqual(['alert:fleet-cpu:box-1', 'alert:fleet-cpu:box-2', 'alert:mem:box-2', 'alert:self-cpu:box-1']);
    expect(Object.keys(t.ctx().alerts).sort()).toEqual(t.children());
    expect(t.ctx().alerts['alert:mem:box-2']).toEqual({ rule: 'mem', device: 'box-2', level: 'ok' });
    expect(t.errors).toEqual([]);
  });

  it('forwards values; each transition to firing or resolved gives exactly one notice, and every level change is persisted', async () => {
    const t = await (await start()).ready();
    for (const [i, v] of [50, 95, 85, 79, 70].entries()) t.sample('box-1', i * 10, { 'cpu-percent': v });
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@10', 'resolved box-1@30']);
    expect(t.notices()[0]).toMatchObject({
      alert: 'alert:cpu:box-1',
      metric: 'cpu-percent',
      value: 95,
      threshold: 90,
      clear: 80,
      since: T0 + 10_000,
      suppressed: 0,
    });
    const states = t.commands().flatMap((c) => (c.type === 'alerts.state' ? [c.memory?.level] : []));
    expect(states).toEqual(['pending', 'firing', 'resolved', 'ok']);
    expect(t.ctx().alerts['alert:cpu:box-1'].level).toBe('ok');
    expect(t.ctx().counters).toMatchObject({ samples: 5, notices: 2, suppressed: 0 });
  });

  it('rate limit: a flapping metric gets at most max notices per rule per window; the held-back last word goes out after it, with the count', async () => {
    const t = await (await start({ rules: [{ ...cpu, clear: 90 }], rateLimit: { max: 3, windowMs: 600_000 } })).ready();
    // flaps every 10 s for 2 minutes: 12 transitions
    for (let i = 0; i < 12; i++) t.sample('box-1', i * 10, { 'cpu-percent': i % 2 === 0 ? 95 : 50 });
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@0', 'resolved box-1@10', 'firing box-1@20']);
    expect(t.ctx().counters.suppressed).toBe(9);
    expect(t.ctx().windows.cpu).toMatchObject({ sent: 3, suppressed: 9 });
    // quiet (ok) until the window has passed: the latest held one (resolved) differs from the last sent (firing)
    t.sample('box-1', 300, { 'cpu-percent': 50 });
    t.sample('box-1', 600, { 'cpu-percent': 50 });
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@0', 'resolved box-1@10', 'firing box-1@20', 'resolved box-1@600 (+9 suppressed)']);
    expect(t.ctx().held).toEqual({});
    expect(t.errors).toEqual([]);
  });

  it('rate limit: a held notice equal to the last one sent is dropped when the window passes (it only counted)', async () => {
    const t = await (await start({ rules: [{ ...cpu, clear: 90 }], rateLimit: { max: 1, windowMs: 60_000 } })).ready();
    t.sample('box-1', 0, { 'cpu-percent': 95 }); // firing: sent
    t.sample('box-1', 10, { 'cpu-percent': 50 }); // resolved: held
    t.sample('box-1', 20, { 'cpu-percent': 95 }); // firing: held (replaces)
    t.sample('box-1', 70, { 'cpu-percent': 96 });
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@0']);
    expect(t.ctx()).toMatchObject({ held: {}, counters: { suppressed: 2 } });
    t.sample('box-1', 80, { 'cpu-percent': 10 }); // a new window: resolved goes out, with the 2 held back before
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@0', 'resolved box-1@80 (+2 suppressed)']);
  });

  it('refuses alerts beyond maxAlerts, visibly, and counts each refused alert once', async () => {
    const t = await (await start({ rules: [{ ...cpu, devices: 'all' }], maxAlerts: 2 })).ready();
    for (const d of ['a', 'b', 'c', 'd']) t.sample(d, 0, { 'cpu-percent': 99 });
    for (const d of ['c', 'd']) t.sample(d, 10, { 'cpu-percent': 99 });
    await flush();
    expect(t.children()).toEqual(['alert:cpu:a', 'alert:cpu:b']);
    expect(t.ctx().counters.refused).toBe(2);
    expect(t.ctx().refusedIds).toEqual(['alert:cpu:c', 'alert:cpu:d']);
    expect(t.notices().map((n) => n.device)).toEqual(['a', 'b']);
  });

  it('ignores samples with a bad device id or time, and bounds the samples waiting for the restore', async () => {
    const t = await start();
    for (let i = 0; i < 300; i++) t.sample('box-1', i, { 'cpu-percent': 10 });
    expect(t.ctx().early).toHaveLength(256);
    await t.ready();
    expect(t.ctx().early).toEqual([]);
    expect(t.ctx().counters).toMatchObject({ samples: 256, ignored: 44 });
    t.actor.send({ type: 'alerts.sample', sample: { device: 'x/../y', ts: T0, values: { 'cpu-percent': 99 } } });
    t.actor.send({ type: 'alerts.sample', sample: { device: 'box-1', ts: Number.NaN, values: { 'cpu-percent': 99 } } });
    t.actor.send({ type: 'alerts.sample', sample: { device: 'd'.repeat(200), ts: T0, values: { 'cpu-percent': 99 } } });
    await flush();
    expect(t.ctx().counters.ignored).toBe(47);
    expect(t.children()).toEqual(['alert:cpu:box-1']);
  });

  it('samples that arrive while restoring are taken after it, in order', async () => {
    const t = await start();
    t.sample('box-1', 0, { 'cpu-percent': 95 });
    t.sample('box-1', 10, { 'cpu-percent': 50 });
    expect(t.children()).toEqual([]);
    await t.ready();
    expect(t.notices().map(t.brief)).toEqual(['firing box-1@0', 'resolved box-1@10']);
  });

  it('a restart restores a firing alert: visible at once, no second firing notice, resolved later with one', async () => {
    const restored: Record<string, AlertRecord> = {
      'alert:cpu:box-1': { rule: 'cpu', device: 'box-1', level: 'firing', since: T0, firedAt: T0, value: 97, lastTs: T0, stale: false, notified: 'firing' },
      'alert:gone-rule:box-1': {
        rule: 'gone-rule',
        device: 'box-1',
        level: 'firing',
        since: T0,
        firedAt: T0,
        value: 1,
        lastTs: T0,
        stale: false,
        notified: 'firing',
      },
    };
    const t = await (await start({}, restored)).ready();
    expect(t.children()).toEqual(['alert:cpu:box-1']); // a rule no longer configured is not restored
    expect(t.levelOf('alert:cpu:box-1')).toBe('firing');
    t.sample('box-1', 10, { 'cpu-percent': 97 });
    t.sample('box-1', 20, { 'cpu-percent': 40 });
    await flush();
    expect(t.notices().map(t.brief)).toEqual(['resolved box-1@20']);
  });

  it('an alert whose device stops reporting is removed when not firing, and kept (stale) when firing', async () => {
    const t = await (await start({ rules: [{ ...cpu, devices: 'all' }], staleAfterMs: 30_000 })).ready();
    t.sample('quiet-ok', 0, { 'cpu-percent': 10 });
    t.sample('quiet-hot', 0, { 'cpu-percent': 99 });
    await flush();
    await advance(t.clock, 30_000);
    await flush();
    expect(t.children()).toEqual(['alert:cpu:quiet-hot']);
    expect(Object.keys(t.ctx().alerts)).toEqual(['alert:cpu:quiet-hot']);
    expect(t.commands()).toContainEqual({ type: 'alerts.state', id: 'alert:cpu:quiet-ok', memory: null });
    expect(t.commands()).toContainEqual(
      expect.objectContaining({ type: 'alerts.state', id: 'alert:cpu:quiet-hot', memory: expect.objectContaining({ level: 'firing', stale: true }) }),
    );
    expect(t.errors).toEqual([]);
  });

  it('shows what the notifier reports of its channels, and ends (for a restart) when the notifier breaks', async () => {
    const t = await (await start()).ready();
    const status = { channel: 'slack', pending: 2, delivered: 5, dropped: 0, rejected: 0, failing: { code: 'http_500', message: 'Slack answered 500' } };
    t.notifier.current.sendBack({ type: 'alerts.delivery', status });
    expect(t.ctx().delivery.slack).toEqual(status);
    const broken = alertsMachine.provide({
      actors: {
        notifier: fromCallback(() => {
          throw new Error('bug in the notifier');
        }),
        restoreAlerts: fakePromise<Record<string, AlertRecord>>().logic,
      },
    });
    const actor = createActor(broken, { input: { rules: [cpu], thingName: 'box-1' } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().context.lastError).toMatchObject({ message: 'bug in the notifier' });
    expect(errors).toEqual([]);
  });
});
