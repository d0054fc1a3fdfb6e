import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type InspectionEvent } from 'xstate';
import {
  jobMachine,
  type JobInput,
  type Plan,
  type PlannedStep,
  type Report,
  type RunStepInput,
  type StepResult,
  type Validation,
} from '../../machines/job.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise } from '../support/fakes.js';

const input: JobInput = {
  execution: { jobId: 'job-1', executionNumber: 1, jobDocument: {} },
  direct: false,
  retry: { minMs: 1000, maxMs: 8000 },
  jitterSeed: 1,
};
const planned = (name: string, ignoreStepFailure = false): PlannedStep => ({
  name,
  ignoreStepFailure,
  program: { path: '/bin/true', args: [], timeoutSeconds: 5, allowStdErr: 0 },
});
const plan = (steps: Array<[string, boolean?]>, finalStep?: string): Plan => ({
  steps: steps.map(([name, ignoreStepFailure]) => planned(name, ignoreStepFailure)),
  finalStep: finalStep ? planned(finalStep) : undefined,
  includeStdOut: false,
});
const result = (name: string, ok: boolean): StepResult => ({
  name,
  ok,
  reason: ok ? undefined : 'exited with code 1',
  exitCode: ok ? 0 : 1,
  signal: null,
  durationMs: 5,
  stdout: '',
  stderr: '',
});
const acknowledged: Report = { endedBy: null };

function start(validation: Validation, stepOk: Record<string, boolean> = {}, over: Partial<JobInput> = {}) {
  const clock = new SimulatedClock();
  const calls: string[] = [];
  const report = fakePromise<Report>();
  const markInProgress = fakePromise<void>();
  const progress = fakeCallback();
  const machine = jobMachine.provide({
    actors: {
      recordReceived: fromPromise(async () => {}),
      validateJob: fromPromise(async () => validation),
      markInProgress: markInProgress.logic,
      runStep: fromPromise<StepResult, RunStepInput>(async ({ input: i }) => {
        const name = i.step.name;
        calls.push(name);
        return result(name, stepOk[name] ?? true);
      }),
      reportResult: report.logic,
      recordCancel: fromPromise(async () => {}),
      reportProgress: progress.logic,
    },
  });
  const errors: unknown[] = [];
  /** the name of every actor the job invokes, in order of creation */
  const created: string[] = [];
  const inspect = (e: InspectionEvent) => {
    const src = (e.actorRef as { src?: unknown }).src;
    if (e.type === '@xstate.actor' && typeof src === 'string') created.push(src);
  };
  const actor = createActor(machine, { input: { ...input, ...over }, clock, inspect });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, clock, calls, report, markInProgress, progress, errors, created };
}

async function settle() {
  for (let i = 0; i < 5; i++) await flush();
}

describe('job machine', () => {
  it('says IN_PROGRESS before running anything, runs the steps in order, reports SUCCEEDED', async () => {
    const job = start({ ok: true, plan: plan([['a'], ['b']]) });
    await settle();
    expect(job.actor.getSnapshot().value).toBe('starting');
    expect(job.calls).toEqual([]);
    await settle();
    job.markInProgress.resolve();
    await settle();
    expect(job.calls).toEqual(['a', 'b']);
    expect(job.actor.getSnapshot().value).toEqual({ reporting: 'sending' });
    expect(job.report.calls).toBe(1);
    job.report.resolve(acknowledged);
    await settle();
    expect(job.actor.getSnapshot().value).toBe('succeeded');
    expect(job.actor.getSnapshot().output).toMatchObject({ jobId: 'job-1', status: 'SUCCEEDED', reason: null });
    expect(job.errors).toEqual([]);
  });

  it('a failed step stops the run, the final step still runs, and the job FAILS with the step named', async () => {
    const job = start({ ok: true, plan: plan([['a'], ['b'], ['c']], 'cleanup') }, { b: false });
    await settle();
    job.markInProgress.resolve();
    await settle();
    expect(job.calls).toEqual(['a', 'b', 'cleanup']);
    job.report.resolve(acknowledged);
    await settle();
    expect(job.actor.getSnapshot().output).toMatchObject({ status: 'FAILED', reason: 'step "b" failed: exited with code 1' });
    expect(job.actor.getSnapshot().output?.results.map((r) => r.name)).toEqual(['a', 'b', 'cleanup']);
  });

  it('ignoreStepFailure lets the run go on and the job succeed; a failing final step fails it', async () => {
    const ok = start({ ok: true, plan: plan([['a', true], ['b']]) }, { a: false });
    await settle();
    ok.markInProgress.resolve();
    await settle();
    ok.report.resolve(acknowledged);
    await settle();
    expect(ok.calls).toEqual(['a', 'b']);
    expect(ok.actor.getSnapshot().output?.status).toBe('SUCCEEDED');

    const final = start({ ok: true, plan: plan([['a']], 'cleanup') }, { cleanup: false });
    await settle();
    final.markInProgress.resolve();
    await settle();
    final.report.resolve(acknowledged);
    await settle();
    expect(final.actor.getSnapshot().output).toMatchObject({ status: 'FAILED', reason: 'final step "cleanup" failed: exited with code 1' });
  });

  it('an invalid document is REJECTED with the reason, and nothing runs', async () => {
    const job = start({ ok: false, reason: 'invalid job document: steps must be a non-empty array' });
    await settle();
    expect(job.actor.getSnapshot().value).toEqual({ reporting: 'sending' });
    job.report.resolve(acknowledged);
    await settle();
    expect(job.calls).toEqual([]);
    expect(job.markInProgress.calls).toBe(0);
    expect(job.actor.getSnapshot().output).toMatchObject({ status: 'REJECTED', reason: 'invalid job document: steps must be a non-empty array' });
  });

  it('direct mode reports only the terminal status', async () => {
    const job = start({ ok: true, plan: plan([['a']]) }, {}, { direct: true });
    await settle();
    expect(job.markInProgress.calls).toBe(0);
    expect(job.calls).toEqual(['a']);
  });

  it('retries the report with backoff until the service acknowledges it', async () => {
    const job = start({ ok: true, plan: plan([['a']]) });
    await settle();
    job.markInProgress.resolve();
    await settle();
    job.report.reject(new Error('offline'));
    await settle();
    expect(job.actor.getSnapshot().value).toEqual({ reporting: 'waiting' });
    const wait = job.actor.getSnapshot().context.retryInMs;
    expect(wait).toBeGreaterThanOrEqual(500);
    await advance(job.clock, wait);
    expect(job.report.calls).toBe(1);
    job.report.resolve(acknowledged);
    await settle();
    expect(job.actor.getSnapshot().value).toBe('succeeded');
  });

  it('a cancel from the service ends the job unreported, wherever it is', async () => {
    const job = start({ ok: true, plan: plan([['a']]) });
    await settle();
    job.actor.send({ type: 'job.cancel', reason: 'CANCELED by the service' });
    await settle();
    expect(job.actor.getSnapshot().value).toBe('canceled');
    expect(job.actor.getSnapshot().output).toMatchObject({ status: 'CANCELED', reason: 'CANCELED by the service' });
    expect(job.report.calls).toBe(0);
  });

  it('the service refusing IN_PROGRESS (canceled meanwhile) ends the job without running it', async () => {
    const job = start({ ok: true, plan: plan([['a']]) });
    await settle();
    job.markInProgress.reject(new Error('InvalidStateTransition'));
    await settle();
    expect(job.calls).toEqual([]);
    expect(job.actor.getSnapshot().output?.status).toBe('CANCELED');
  });
});

describe('job machine: progress', () => {
  it('announces each later step as it starts, the final step included (the first was named by IN_PROGRESS); none in direct mode', async () => {
    const job = start({ ok: true, plan: plan([['a'], ['b']], 'cleanup') });
    await settle();
    job.markInProgress.resolve();
    await settle();
    expect(job.progress.current.received).toEqual([
      { type: 'job.progress', index: 1, count: 3, step: 'b' },
      { type: 'job.progress', index: 2, count: 3, step: 'cleanup' },
    ]);
    expect(job.markInProgress.calls).toBe(0);

    const direct = start({ ok: true, plan: plan([['a'], ['b']], 'cleanup') }, {}, { direct: true });
    await settle();
    expect(direct.calls).toEqual(['a', 'b', 'cleanup']);
    expect(direct.progress.current.received).toEqual([]);
  });
});

describe('job machine: a computed result', () => {
  it('is still reported when a cancel arrives during reporting (the update learns the truth)', async () => {
    const job = start({ ok: true, plan: plan([['a']]) });
    await settle();
    job.markInProgress.resolve();
    await settle();
    job.actor.send({ type: 'job.cancel', reason: 'head changed' });
    expect(job.actor.getSnapshot().value).toEqual({ reporting: 'sending' });
    job.report.resolve(acknowledged);
    await settle();
    expect(job.actor.getSnapshot().output?.status).toBe('SUCCEEDED');
  });

  it('ends as ended by the service when the update shows the service timed it out first (no retry, not a failure)', async () => {
    const job = start({ ok: true, plan: plan([['a']]) });
    await settle();
    job.markInProgress.resolve();
    await settle();
    job.report.resolve({ endedBy: 'TIMED_OUT' });
    await settle();
    expect(job.actor.getSnapshot().value).toBe('canceled');
    expect(job.actor.getSnapshot().output).toMatchObject({
      status: 'CANCELED',
      reason: 'the service ended this execution first (TIMED_OUT); the result was not taken',
    });
    expect(job.actor.getSnapshot().output?.results.map((r) => r.name)).toEqual(['a']);
    job.clock.increment(60_000);
    await settle();
    expect(job.report.calls).toBe(0);
    expect(job.errors).toEqual([]);
  });

  it('besides its progress reporter, creates an actor only for what runs: one per step, none for a missing final step, no IN_PROGRESS actor in direct mode', async () => {
    const job = start({ ok: true, plan: plan([['a'], ['b']]) });
    await settle();
    job.markInProgress.resolve();
    await settle();
    job.report.resolve(acknowledged);
    await settle();
    expect(job.actor.getSnapshot().value).toBe('succeeded');
    expect(job.created).toEqual(['reportProgress', 'recordReceived', 'validateJob', 'markInProgress', 'runStep', 'runStep', 'reportResult']);

    const direct = start({ ok: true, plan: plan([['a']], 'cleanup') }, {}, { direct: true });
    await settle();
    direct.report.resolve(acknowledged);
    await settle();
    expect(direct.calls).toEqual(['a', 'cleanup']);
    expect(direct.created).toEqual(['reportProgress', 'recordReceived', 'validateJob', 'runStep', 'runStep', 'reportResult']);
  });
});
