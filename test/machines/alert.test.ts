import { afterEach, describe, expect, it } from 'vitest';
import { createActor, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { alertLevelOf, alertMachine, breaches, recovers, type AlertChanged, type AlertInput, type AlertMemory, type AlertRule } from '../../machines/alert.js';
import { advance, flush } from '../support/clock.js';

const hot: AlertRule = { id: 'hot', metric: 'cpu-temp-celsius', op: '>', threshold: 80, clear: 70, forSeconds: 30, severity: 'critical' };

const running: Array<{ stop(): void }> = [];
afterEach(() => {
  while (running.length) running.pop()!.stop();
});

/** The alert chart invoked by a parent that records what it reports, on a simulated clock. */
function start(rule: AlertRule = hot, extra: Partial<AlertInput> = {}) {
  const clock = new SimulatedClock();
  const reports: AlertChanged[] = [];
  const errors: unknown[] = [];
  let done = false;
  const input: AlertInput = { rule, device: 'box-1', staleAfterMs: 60_000, ...extra };
  const parent = setup({ actors: { alert: alertMachine } }).createMachine({
    invoke: { src: 'alert', id: 'child', input, onDone: { actions: () => (done = true) } },
    on: { 'alert.changed': { actions: ({ event }) => reports.push(event as AlertChanged) } },
  });
  const actor = createActor(parent, { clock });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  running.push(actor);
  const child = () => actor.getSnapshot().children.child as AnyActorRef | undefined;
  const t0 = 1_700_000_000_000;
  return {
    clock,
    reports,
    errors,
    isDone: () => done,
    /** a sample `seconds` after t0 */
    sample: (seconds: number, value: number) => child()?.send({ type: 'alert.sample', ts: t0 + seconds * 1000, value }),
    level: () => alertLevelOf(child()?.getSnapshot().value),
    ctx: () => child()?.getSnapshot().context as { stale: boolean; ignored: number; since: number | null },
    notices: () => reports.filter((r) => r.notice).map((r) => `${r.notice!.kind}@${(r.notice!.at - t0) / 1000}=${r.notice!.value}`),
    t0,
  };
}

describe('alert rule semantics', () => {
  it('compares with op against threshold, and resolves against clear (hysteresis band kept)', () => {
    expect(breaches(hot, 80)).toBe(false);
    expect(breaches(hot, 80.1)).toBe(true);
    expect(recovers(hot, 75)).toBe(false); // in the band: still firing
    expect(recovers(hot, 70)).toBe(true); // ">": resolves when value <= clear
    const low: AlertRule = { id: 'low', metric: 'disk-root-free-percent', op: '<=', threshold: 5, clear: 10 };
    expect(breaches(low, 5)).toBe(true);
    expect(recovers(low, 10)).toBe(false);
    expect(recovers(low, 10.5)).toBe(true); // "<=": resolves when value > clear
    const noBand: AlertRule = { id: 'x', metric: 'm', op: '>=', threshold: 1 };
    expect(recovers(noBand, 0.99)).toBe(true); // without clear the negation of the breach resolves it
    expect(recovers(noBand, 1)).toBe(false);
  });
});

describe('alert machine', () => {
  it('fires once the breach held for forSeconds, in sample time, and resolves only below clear', async () => {
    const a = start();
    a.sample(0, 50);
    expect(a.level()).toBe('ok');
    a.sample(10, 85);
    expect(a.level()).toBe('pending');
    a.sample(20, 90);
    a.sample(30, 91);
    expect(a.level()).toBe('pending'); // 20 s of breach so far
    a.sample(40, 92);
    expect(a.level()).toBe('firing');
    a.sample(50, 75); // between clear and threshold: still firing
    a.sample(60, 72);
    expect(a.level()).toBe('firing');
    a.sample(70, 69);
    expect(a.level()).toBe('resolved');
    a.sample(80, 60);
    expect(a.level()).toBe('ok');
    await flush();
    expect(a.notices()).toEqual(['firing@40=92', 'resolved@70=69']);
    const fired = a.reports.find((r) => r.notice?.kind === 'firing')!.notice!;
    expect(fired).toMatchObject({
      alert: 'alert:hot:box-1',
      rule: 'hot',
      device: 'box-1',
      metric: 'cpu-temp-celsius',
      op: '>',
      threshold: 80,
      clear: 70,
      severity: 'critical',
      since: a.t0 + 10_000,
    });
    expect(a.reports.map((r) => r.memory.level)).toEqual(['pending', 'firing', 'resolved', 'ok']);
    expect(a.errors).toEqual([]);
  });

  it('a breach interrupted before forSeconds goes back to ok without a notice', () => {
    const a = start();
    a.sample(0, 85);
    a.sample(20, 85);
    a.sample(25, 79); // not a breach: the episode ends
    a.sample(30, 85);
    a.sample(50, 85);
    expect(a.level()).toBe('pending'); // a new episode began at 30
    a.sample(60, 85);
    expect(a.level()).toBe('firing');
    expect(a.notices()).toEqual(['firing@60=85']);
  });

  it('forSeconds 0 fires at the first breaching sample; a resolved alert breaching again goes pending, then fires again', () => {
    const a = start({ id: 'load', metric: 'load-1', op: '>=', threshold: 4 });
    a.sample(0, 4);
    expect(a.level()).toBe('firing');
    a.sample(10, 3.9);
    expect(a.level()).toBe('resolved');
    a.sample(20, 5);
    expect(a.level()).toBe('firing'); // through pending, forSeconds 0
    expect(a.notices()).toEqual(['firing@0=4', 'resolved@10=3.9', 'firing@20=5']);
  });

  it('a flapping value produces exactly one notice per transition, none inside the hysteresis band', () => {
    const a = start({ ...hot, forSeconds: 0 });
    const values = [81, 75, 79, 71, 85, 69, 72, 79, 81, 90, 70, 60];
    for (const [i, v] of values.entries()) a.sample(i * 10, v);
    // 81 fires; 75..71 stay in the band; 69 resolves; 72, 79 stay resolved (no breach); 81 fires; 70 resolves
    expect(a.notices()).toEqual(['firing@0=81', 'resolved@50=69', 'firing@80=81', 'resolved@100=70']);
  });

  it('ignores samples that are not newer than the last one or not finite numbers', () => {
    const a = start({ ...hot, forSeconds: 0 });
    a.sample(10, 85);
    a.sample(10, 60); // same time
    a.sample(5, 60); // older
    a.sample(20, Number.NaN);
    a.sample(30, Number.POSITIVE_INFINITY);
    expect(a.level()).toBe('firing');
    expect(a.ctx().ignored).toBe(4);
  });

  it('missing data: a firing alert stays firing and is marked stale; fresh data clears the mark', async () => {
    const a = start({ ...hot, forSeconds: 0 });
    a.sample(0, 90);
    await advance(a.clock, 60_000);
    expect(a.level()).toBe('firing');
    expect(a.ctx().stale).toBe(true);
    expect(a.reports.at(-1)!.memory).toMatchObject({ level: 'firing', stale: true });
    expect(a.isDone()).toBe(false);
    a.sample(70, 90);
    expect(a.ctx().stale).toBe(false);
    await advance(a.clock, 59_000);
    expect(a.ctx().stale).toBe(false); // the timer restarted at the last sample
    expect(a.notices()).toEqual(['firing@0=90']);
  });

  it('missing data: a pending or ok alert ends (retired) when its device stops reporting, without a notice', async () => {
    const a = start();
    a.sample(0, 90);
    expect(a.level()).toBe('pending');
    await advance(a.clock, 60_000);
    await flush();
    expect(a.isDone()).toBe(true);
    expect(a.reports.at(-1)!.memory.level).toBe('ok');
    expect(a.notices()).toEqual([]);
    const b = start();
    b.sample(0, 10);
    await advance(b.clock, 60_000);
    expect(b.isDone()).toBe(true);
  });

  it('a restored firing alert comes back firing without a new notice, and resolves with one', () => {
    const restored: AlertMemory = {
      rule: 'hot',
      device: 'box-1',
      level: 'firing',
      since: 1_700_000_000_000,
      firedAt: 1_700_000_030_000,
      value: 95,
      lastTs: 1_700_000_030_000,
      stale: false,
    };
    const a = start(hot, { restored });
    expect(a.level()).toBe('firing');
    a.sample(40, 95);
    a.sample(50, 30);
    expect(a.notices()).toEqual(['resolved@50=30']);
    expect(a.reports.find((r) => r.notice)!.notice!.since).toBe(restored.since);
  });
});
