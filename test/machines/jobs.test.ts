import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { jobMachine, type Execution, type Report, type StepResult, type Validation } from '../../machines/job.js';
import { jobsMachine } from '../../machines/jobs.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise } from '../support/fakes.js';

const exec = (jobId: string, executionNumber = 1): Execution => ({ jobId, executionNumber, jobDocument: {} });

/** The real job chart with stand-in actors: its one step runs until the test finishes it,
 * and what a cancel records is kept. */
function fakeJob() {
  const step = fakePromise<StepResult>();
  const canceled: Array<{ reason: string | null; endedBy: string | null }> = [];
  const planned = { name: 'a', ignoreStepFailure: false, program: { path: '/bin/true', args: [], timeoutSeconds: 5, allowStdErr: 0 } };
  const logic = jobMachine.provide({
    actors: {
      recordReceived: fromPromise(async () => {}),
      validateJob: fromPromise(async (): Promise<Validation> => ({ ok: true, plan: { steps: [planned], includeStdOut: false } })),
      markInProgress: fromPromise(async () => {}),
      runStep: step.logic,
      reportResult: fromPromise(async (): Promise<Report> => ({ endedBy: null })),
      recordCancel: fromPromise(async ({ input }) => void canceled.push({ reason: input.reason, endedBy: input.endedBy })),
      reportProgress: fakeCallback().logic,
    },
  });
  const finish = () => step.resolve({ name: 'a', ok: true, exitCode: 0, signal: null, durationMs: 1, stdout: '', stderr: '' });
  return { logic, finish, canceled };
}

function start(recent: string[] = [], direct = false) {
  const clock = new SimulatedClock();
  const feed = fakeCallback();
  const ask = fakePromise<Execution | null>();
  const resend = fakePromise<void, { key: string }>();
  const check = fakePromise<string | null>();
  const job = fakeJob();
  const machine = jobsMachine.provide({
    actors: {
      jobsFeed: feed.logic,
      recover: fromPromise(async () => ({ recent })),
      resendPending: fromPromise(async () => {}),
      askNext: ask.logic,
      resendResult: resend.logic,
      checkCurrent: check.logic,
      job: job.logic,
    },
  });
  const errors: unknown[] = [];
  const actor = createActor(machine, { input: { direct, retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 1 }, clock });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const settle = async () => {
    for (let i = 0; i < 5; i++) await flush();
  };
  return { actor, clock, feed, ask, resend, check, job, errors, settle };
}

describe('jobs machine', () => {
  it('asks once online, runs the job it is given, and asks again after it', async () => {
    const t = start();
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('offline');
    expect(t.ask.calls).toBe(0);
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    expect(t.ask.calls).toBe(1);
    t.ask.resolve(exec('a'));
    await t.settle();
    expect(t.actor.getSnapshot().value).toEqual({ busy: 'watching' });
    expect(t.actor.getSnapshot().children['job:a']).toBeDefined();
    expect(t.actor.getSnapshot().context.current).toMatchObject({ jobId: 'a', childId: 'job:a' });
    t.job.finish();
    await t.settle();
    expect(t.actor.getSnapshot().children['job:a']).toBeUndefined(); // stopped, not kept
    expect(t.actor.getSnapshot().context.recent).toEqual(['a#1']);
    expect(t.ask.calls).toBe(1);
    t.ask.resolve(null);
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('idle');
    expect(t.errors).toEqual([]);
  });

  it('never runs an execution twice: one that ran already gets its result sent again; a retry runs', async () => {
    const t = start(['a#1']);
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.ask.resolve(exec('a', 1)); // a stale or redelivered offer
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('resending');
    expect(t.actor.getSnapshot().children['job:a']).toBeUndefined();
    t.resend.resolve();
    await t.settle();
    t.ask.resolve(exec('a', 2)); // the service's retry: a new execution number
    await t.settle();
    expect(t.actor.getSnapshot().children['job:a']).toBeDefined();
  });

  it('a notification while idle makes it ask; one while busy for another head checks the current job and cancels it if the service ended it', async () => {
    const t = start();
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.ask.resolve(null);
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'a', executionNumber: 1 } });
    await t.settle();
    t.ask.resolve(exec('a'));
    await t.settle();
    // the same head again (a duplicate notification): nothing to check
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'a', executionNumber: 1 } });
    await t.settle();
    expect(t.check.calls).toBe(0);
    // another head: is ours still on?
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'b', executionNumber: 1 } });
    await t.settle();
    expect(t.check.calls).toBe(1);
    t.check.resolve('TIMED_OUT');
    await t.settle();
    // the job is told which status the service ended it with, for its record
    expect(t.job.canceled).toEqual([{ endedBy: 'TIMED_OUT', reason: 'the service ended this execution (TIMED_OUT)' }]);
  });

  it('retries asking with backoff after a failure, and waits while offline', async () => {
    const t = start();
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.ask.reject(new Error('no answer to $next/get within 10000 ms'));
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('retrying');
    await advance(t.clock, t.actor.getSnapshot().context.retryInMs);
    await t.settle();
    expect(t.ask.calls).toBe(1);
    t.feed.current.sendBack({ type: 'jobs.offline' });
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('offline');
  });
});

describe('jobs machine: no lost wake-up', () => {
  it('a notification that arrives while an empty answer is on its way makes it ask once more', async () => {
    const t = start();
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'late', executionNumber: 1 } });
    t.ask.resolve(null); // answered before the job was queued
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('asking');
    t.ask.resolve(exec('late'));
    await t.settle();
    expect(t.actor.getSnapshot().children['job:late']).toBeDefined();
  });
});

describe('jobs machine: no redundant question', () => {
  it('a notification that the list is empty, or naming a job already run, adds no second $next/get to an empty answer; idle, an empty list asks nothing', async () => {
    const t = start(['done#1']);
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    expect(t.ask.calls).toBe(1);
    // what our own terminal update makes the service announce, while the answer is on its way
    t.feed.current.sendBack({ type: 'jobs.notified', execution: null });
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'done', executionNumber: 1 } });
    t.ask.resolve(null);
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('idle');
    expect(t.ask.calls).toBe(0); // no question pending: none was asked again
    // once idle, a notice that the list is empty asks nothing either; one naming a job does
    t.feed.current.sendBack({ type: 'jobs.notified', execution: null });
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('idle');
    expect(t.ask.calls).toBe(0);
    t.feed.current.sendBack({ type: 'jobs.notified', execution: { jobId: 'new', executionNumber: 1 } });
    await t.settle();
    expect(t.ask.calls).toBe(1);
    expect(t.errors).toEqual([]);
  });
});

describe('jobs machine: an execution offered by the notification', () => {
  const offer = (e: Execution) => ({ type: 'jobs.notified' as const, execution: { jobId: e.jobId, executionNumber: e.executionNumber }, offered: e });
  async function idle(recent: string[] = [], direct = false) {
    const t = start(recent, direct);
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.ask.resolve(null);
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('idle');
    return t;
  }

  it('while idle, starts it without asking', async () => {
    const t = await idle();
    t.feed.current.sendBack(offer(exec('n')));
    await t.settle();
    expect(t.actor.getSnapshot().children['job:n']).toBeDefined();
    expect(t.ask.calls).toBe(0); // no ask on its way
  });

  it('while an ask is on its way, starts it; the answer that follows changes nothing', async () => {
    const t = start();
    await t.settle();
    t.feed.current.sendBack({ type: 'jobs.ready' });
    await t.settle();
    t.feed.current.sendBack(offer(exec('n')));
    await t.settle();
    expect(t.actor.getSnapshot().value).toEqual({ busy: 'watching' });
    t.ask.resolve(exec('n'));
    await t.settle();
    expect(Object.keys(t.actor.getSnapshot().children).filter((k) => k.startsWith('job:'))).toEqual(['job:n']);
    expect(t.errors).toEqual([]);
  });

  it('one that ran here already is not run: the service is asked, as for a bare notification', async () => {
    const t = await idle(['old#1']);
    t.feed.current.sendBack(offer(exec('old')));
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('asking');
    expect(t.actor.getSnapshot().children['job:old']).toBeUndefined();
  });

  it('in direct mode (no IN_PROGRESS to catch a stale offer) the service is asked', async () => {
    const t = await idle([], true);
    t.feed.current.sendBack(offer(exec('n')));
    await t.settle();
    expect(t.actor.getSnapshot().value).toBe('asking');
    expect(t.actor.getSnapshot().children['job:n']).toBeUndefined();
  });
});
