import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { monitorMachine, type MonitorSample, type SampleOutput } from '../../machines/monitor.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise } from '../support/fakes.js';

const INTERVAL = 10_000;

function start() {
  const clock = new SimulatedClock();
  const history = fakeCallback();
  const feed = fakeCallback();
  const collector = fakeCallback();
  const alerts = fakeCallback();
  const sample = fakePromise<SampleOutput>();
  const inventory = fakeCallback();
  const machine = monitorMachine.provide({
    actors: {
      historyStore: history.logic,
      sampleFeed: feed.logic,
      collector: collector.logic,
      inventory: inventory.logic,
      sampleHost: sample.logic,
      alerts: alerts.logic as never,
    }, // a callback stands in for the alerts manager (tested on its own)
  });
  const rules = [{ id: 'hot', metric: 'cpu-percent', op: '>' as const, threshold: 90, forSeconds: 60, severity: 'warning' as const, devices: 'all' as const }];
  const actor = createActor(machine, {
    clock,
    input: { intervalMs: INTERVAL, alerts: { rules, thingName: 'pi-1' }, retry: { minMs: 1000, maxMs: 60_000 }, jitterSeed: 7 },
  });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, clock, history, feed, collector, alerts, sample, errors, healthy: () => actor.getSnapshot().hasTag('healthy') };
}

const done = (values = 12): SampleOutput => ({ at: 1, values, durationMs: 2 });

describe('monitor machine', () => {
  it('opens the history, then samples every interval', async () => {
    const { actor, clock, history, sample, errors, healthy } = start();
    expect(actor.getSnapshot().value).toEqual({ active: 'opening' });
    expect(sample.calls).toBe(0);
    history.current.sendBack({ type: 'history.opened', devices: 0, usedBytes: 4096 });
    expect(sample.calls).toBe(1);
    sample.resolve(done());
    await flush();
    expect(actor.getSnapshot().value).toEqual({ active: { running: { sampler: 'waiting', collector: {} } } });
    expect(healthy()).toBe(true);
    await advance(clock, INTERVAL - 1);
    expect(sample.calls).toBe(0);
    await advance(clock, 1);
    expect(sample.calls).toBe(1);
    sample.resolve(done(20));
    await flush();
    expect(actor.getSnapshot().context.counters).toEqual({ samples: 2, failures: 0, usedBytes: 4096 });
    expect(actor.getSnapshot().context.lastSample).toEqual(done(20));
    expect(errors).toEqual([]);
  });

  it('a failed sample is a visible state with its reason, sampled again after the interval, healthy once one succeeds', async () => {
    const { actor, clock, history, sample, errors, healthy } = start();
    history.current.sendBack({ type: 'history.opened', devices: 0, usedBytes: 0 });
    sample.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
    await flush();
    expect(actor.getSnapshot().value).toMatchObject({ active: { running: { sampler: 'failing' } } });
    expect(healthy()).toBe(false);
    expect(actor.getSnapshot().context.problem).toBe('sampling failed: EMFILE: too many open files');
    await advance(clock, INTERVAL);
    expect(actor.getSnapshot().value).toMatchObject({ active: { running: { sampler: 'retrying' } } });
    expect(healthy()).toBe(false);
    sample.resolve(done());
    await flush();
    expect(healthy()).toBe(true);
    expect(actor.getSnapshot().context).toMatchObject({ problem: null, error: null, counters: { samples: 1, failures: 1 } });
    expect(errors).toEqual([]);
  });

  it('a history store that fails is broken with the reason, and is opened again after a growing backoff', async () => {
    const { actor, clock, history, errors, healthy } = start();
    history.current.sendBack({ type: 'history.failed', error: { code: 'SQLITE_CANTOPEN', message: 'unable to open database file' } });
    expect(actor.getSnapshot().value).toBe('broken');
    expect(actor.getSnapshot().context.problem).toBe('history unavailable: unable to open database file');
    expect(healthy()).toBe(false);
    expect(history.liveCount).toBe(0);
    await advance(clock, 1000);
    expect(actor.getSnapshot().value).toEqual({ active: 'opening' });
    history.current.sendBack({ type: 'history.failed', error: { code: 'SQLITE_CANTOPEN', message: 'again' } });
    await advance(clock, 1000);
    expect(actor.getSnapshot().value).toBe('broken'); // the second delay is longer
    await advance(clock, 1000);
    history.current.sendBack({ type: 'history.opened', devices: 1, usedBytes: 0 });
    expect(actor.getSnapshot().context.attempts).toBe(0);
    expect(errors).toEqual([]);
  });

  it("keeps the collector's status as it reports it", async () => {
    const { actor, history, collector, errors } = start();
    history.current.sendBack({ type: 'history.opened', devices: 0, usedBytes: 0 });
    collector.current.sendBack({ type: 'collector.status', state: 'waiting', problem: 'no MQTT session' });
    expect(actor.getSnapshot().context.collector).toEqual({ state: 'waiting', problem: 'no MQTT session' });
    collector.current.sendBack({ type: 'collector.status', state: 'subscribed', problem: null });
    expect(actor.getSnapshot().context.collector).toEqual({ state: 'subscribed', problem: null });
    expect(errors).toEqual([]);
  });

  it('forwards each stored sample to the alerts child as alerts.sample, and gives that child the rules and thing name', async () => {
    const { history, feed, alerts, errors } = start();
    expect(alerts.current.input).toMatchObject({ thingName: 'pi-1', rules: [{ id: 'hot' }] });
    history.current.sendBack({ type: 'history.opened', devices: 0, usedBytes: 0 });
    const sample: MonitorSample = { device: 'pi-2', ts: 5, values: { 'cpu-percent': 93 } };
    feed.current.sendBack({ type: 'monitor.sample', sample });
    expect(alerts.current.received).toEqual([{ type: 'alerts.sample', sample }]);
    expect(errors).toEqual([]);
  });
});
