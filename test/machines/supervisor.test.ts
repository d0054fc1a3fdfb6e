import { describe, expect, it } from 'vitest';
import { createActor, createMachine, fromCallback, SimulatedClock, type AnyActorLogic } from 'xstate';
import { supervisorMachine, type Concern, type SupervisorInput } from '../../machines/supervisor.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise, standIn } from '../support/fakes.js';
import { treeInput } from '../support/tree.js';

const input: SupervisorInput = {
  ...treeInput,
  enabled: { broker: false, link: true, outbox: false, jobs: false, devices: false, firmware: false, monitor: false, http: true },
  restart: { backoff: { minMs: 1000, maxMs: 8000 }, maxRestarts: 3, stableMs: 60_000, jitterSeed: 7 },
  drainTimeoutMs: 5000,
};

function start(overrides: Partial<SupervisorInput> = {}, children: Partial<Record<Concern, AnyActorLogic>> = {}) {
  const clock = new SimulatedClock();
  const prepare = fakePromise<void>();
  const drain = fakePromise<void>();
  const starts: Record<string, number> = {};
  const concern = (name: Concern) =>
    children[name] ??
    fromCallback(() => {
      starts[name] = (starts[name] ?? 0) + 1;
    });
  const machine = supervisorMachine.provide({
    actors: {
      prepare: prepare.logic,
      drain: drain.logic,
      broker: standIn(concern('broker')),
      link: standIn(concern('link')),
      outbox: standIn(concern('outbox')),
      jobs: standIn(concern('jobs')),
      firmware: standIn(concern('firmware')),
      http: standIn(concern('http')),
    },
  });
  const errors: unknown[] = [];
  const actor = createActor(machine, { input: { ...input, ...overrides }, clock });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, clock, prepare, drain, errors, starts };
}

/** A concern machine that errors when it receives `crash` (an exception in an action). */
const failingOnCommand = createMachine({
  on: {
    crash: {
      actions: () => {
        throw new Error('exception inside the concern');
      },
    },
  },
});

describe('supervisor machine', () => {
  it('starts the enabled concerns after prepare, skipping disabled ones', async () => {
    const { actor, prepare, starts, errors } = start();
    expect(actor.getSnapshot().value).toBe('starting');
    prepare.resolve();
    await flush();
    expect(actor.getSnapshot().value).toEqual({
      running: {
        broker: 'disabled',
        link: 'up',
        outbox: 'disabled',
        jobs: 'disabled',
        devices: 'disabled',
        firmware: 'disabled',
        monitor: 'disabled',
        http: 'up',
      },
    });
    expect(starts).toEqual({ link: 1, http: 1 });
    expect(actor.getSnapshot().children.link).toBeDefined();
    expect(actor.getSnapshot().children.broker).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('restarts a crashed concern with backoff, tagged degraded meanwhile, and gives up at the limit', async () => {
    const { actor, prepare, clock, errors } = start({}, { link: failingOnCommand });
    prepare.resolve();
    await flush();
    const delays: number[] = [];
    for (let crash = 1; crash <= 3; crash++) {
      actor.getSnapshot().children.link!.send({ type: 'crash' });
      await flush();
      const snap = actor.getSnapshot();
      expect(snap.value).toMatchObject({ running: { link: 'restarting', http: 'up' } });
      expect(snap.hasTag('degraded')).toBe(true);
      expect(snap.context.restarts.link).toBe(crash);
      expect(snap.context.lastCrash.link?.message).toContain('exception inside the concern');
      delays.push(snap.context.retryInMs.link);
      await advance(clock, snap.context.retryInMs.link);
      expect(actor.getSnapshot().value).toMatchObject({ running: { link: 'up' } });
      expect(actor.getSnapshot().hasTag('degraded')).toBe(false);
    }
    expect(delays[0]).toBeLessThanOrEqual(1000);
    expect(delays[2]).toBeGreaterThanOrEqual(2000);
    actor.getSnapshot().children.link!.send({ type: 'crash' });
    await flush();
    expect(actor.getSnapshot().value).toMatchObject({ running: { link: 'gaveUp', http: 'up' } });
    expect(actor.getSnapshot().hasTag('degraded')).toBe(true);
    // the rest of the tree keeps running
    expect(actor.getSnapshot().children.http).toBeDefined();
    expect(errors).toEqual([]);
  });

  it('after a give-up, stops the agent with the reason once exitAfterGiveUpMs has passed (so systemd starts it afresh)', async () => {
    const restart = { ...input.restart, maxRestarts: 1, exitAfterGiveUpMs: 30_000 };
    const { actor, prepare, drain, clock, errors } = start({ restart }, { link: failingOnCommand });
    prepare.resolve();
    await flush();
    actor.getSnapshot().children.link!.send({ type: 'crash' });
    await flush();
    await advance(clock, actor.getSnapshot().context.retryInMs.link);
    actor.getSnapshot().children.link!.send({ type: 'crash' });
    await flush();
    expect(actor.getSnapshot().value).toMatchObject({ running: { link: 'gaveUp', http: 'up' } });
    await advance(clock, 29_000);
    expect(actor.getSnapshot().value).toMatchObject({ running: { link: 'gaveUp' } }); // visible on /health meanwhile
    await advance(clock, 1000);
    expect(actor.getSnapshot().value).toBe('stopping');
    drain.resolve();
    await flush();
    expect(actor.getSnapshot().output?.reason).toMatch(/^link gave up after 2 crashes: .*exception inside the concern/);
    expect(errors).toEqual([]);
  });

  it('names the reason a concern that ended on its own gave, as its crash', async () => {
    const ended = createMachine({ initial: 'a', states: { a: { type: 'final' } }, output: { error: { code: 'ENOSPC', message: 'no space left on device' } } });
    const { actor, prepare } = start({}, { link: ended });
    prepare.resolve();
    await flush();
    expect(actor.getSnapshot().context.lastCrash.link).toEqual({ code: 'ENOSPC', message: 'no space left on device' });
  });

  it('resets the restart count after the concern stays up for stableMs', async () => {
    const { actor, prepare, clock } = start({}, { link: failingOnCommand });
    prepare.resolve();
    await flush();
    actor.getSnapshot().children.link!.send({ type: 'crash' });
    await flush();
    await advance(clock, actor.getSnapshot().context.retryInMs.link);
    await advance(clock, 60_000);
    expect(actor.getSnapshot().context.restarts.link).toBe(0);
  });

  it('a concern ending with a fatal output stops the agent with that reason', async () => {
    const fatal = createMachine({ initial: 'a', states: { a: { type: 'final' } }, output: { fatal: 'http: cannot listen on 127.0.0.1:8080: EADDRINUSE' } });
    const { actor, prepare, drain, errors } = start({}, { http: fatal });
    prepare.resolve();
    await flush();
    expect(actor.getSnapshot().value).toBe('stopping');
    drain.resolve();
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ reason: 'http: cannot listen on 127.0.0.1:8080: EADDRINUSE' });
    expect(errors).toEqual([]);
  });

  it('a concern that ends without a fatal output is restarted', async () => {
    const ends = createMachine({ initial: 'a', states: { a: { type: 'final' } } });
    const { actor, prepare } = start({}, { http: ends });
    prepare.resolve();
    await flush();
    expect(actor.getSnapshot().value).toMatchObject({ running: { http: 'restarting' } });
    expect(actor.getSnapshot().context.restarts.http).toBe(1);
    expect(actor.getSnapshot().context.lastCrash.http?.code).toBe('ended');
  });

  it('supervisor.stop drains and ends with no reason; children are stopped', async () => {
    const link = fakeCallback();
    const { actor, prepare, drain } = start({}, { link: link.logic });
    prepare.resolve();
    await flush();
    expect(link.liveCount).toBe(1);
    actor.send({ type: 'supervisor.stop' });
    expect(actor.getSnapshot().value).toBe('stopping');
    expect(link.liveCount).toBe(0); // cleanup ran
    drain.resolve();
    await flush();
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(actor.getSnapshot().output).toEqual({ reason: null });
  });

  it('a drain that hangs is cut off after drainTimeoutMs', async () => {
    const { actor, prepare, clock } = start();
    prepare.resolve();
    await flush();
    actor.send({ type: 'supervisor.stop' });
    await advance(clock, 5000);
    expect(actor.getSnapshot().value).toBe('stopped');
  });

  it('a failed prepare stops the agent with the reason', async () => {
    const { actor, prepare, drain } = start();
    prepare.reject(new Error("EACCES: permission denied, mkdir '/var/lib/edgevisor'"));
    await flush();
    drain.resolve();
    await flush();
    expect(actor.getSnapshot().output?.reason).toBe("start-up: EACCES: permission denied, mkdir '/var/lib/edgevisor'");
  });
});
