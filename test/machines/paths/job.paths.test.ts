import { describe, expect, it } from 'vitest';
import { transition, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { deadEnds } from '../../support/graph.js';
import { jobMachine, type JobEvent, type JobInput, type Plan, type PlannedStep, type StepResult } from '../../../machines/job.js';

type Snap = SnapshotFrom<typeof jobMachine>;
/** XState's own events (actor ends, delays) are not in the chart's event type; the walk sends them too. */
type Ev = JobEvent;

const planned = (name: string, ignoreStepFailure = false): PlannedStep => ({
  name,
  ignoreStepFailure,
  program: { path: '/bin/true', args: [], timeoutSeconds: 5, allowStdErr: 0 },
});
// A failure of "probe" may be ignored, one of "install" may not; "cleanup" runs whatever happened.
const plan: Plan = { steps: [planned('probe', true), planned('install')], finalStep: planned('cleanup'), includeStdOut: false };
const result = (name: string, ok: boolean): StepResult => ({
  name,
  ok,
  reason: ok ? undefined : 'exited with code 1',
  exitCode: ok ? 0 : 1,
  signal: null,
  durationMs: 1,
  stdout: '',
  stderr: '',
});

const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}`, output, actorId: id });
const error = (id: string) => ({ type: `xstate.error.actor.${id}`, error: new Error(`${id} failed`), actorId: id });
const cancel = { type: 'job.cancel', reason: 'CANCELED by the service', endedBy: 'CANCELED' } satisfies JobEvent;

/** What each invoked actor may come back with: every outcome the chart must handle. */
const outcomes: Record<string, AnyEventObject[]> = {
  recordReceived: [done('recordReceived'), error('recordReceived')],
  validateJob: [done('validateJob', { ok: true, plan }), done('validateJob', { ok: false, reason: 'invalid job document: no steps' }), error('validateJob')],
  markInProgress: [done('markInProgress'), error('markInProgress')],
  runStep: [done('runStep', result('step', true)), done('runStep', result('step', false)), error('runStep')],
  runFinalStep: [done('runFinalStep', result('cleanup', true)), done('runFinalStep', result('cleanup', false)), error('runFinalStep')],
  reportResult: [done('reportResult', { endedBy: null }), done('reportResult', { endedBy: 'TIMED_OUT' }), error('reportResult')],
  recordCancel: [done('recordCancel'), error('recordCancel')],
};

/** The events a state can see: its actors' outcomes, its delay, and a cancel from the service. */
function eventsIn(state: Snap): Ev[] {
  if (state.status !== 'active') return []; // an ended actor takes no more events
  const events: AnyEventObject[] = [cancel];
  for (const id of Object.keys(state.children)) events.push(...(outcomes[id] ?? []));
  if (state.matches({ reporting: 'waiting' })) events.push({ type: 'xstate.after.retry.job.reporting.waiting' });
  return events as Ev[];
}

/** The terminal report: the result acknowledged by the service, or the cancel recorded. */
const isTerminalReport = (event: { type: string }) =>
  event.type === 'xstate.done.actor.reportResult' || event.type === 'xstate.done.actor.recordCancel' || event.type === 'xstate.error.actor.recordCancel';

const RUNNERS = ['runStep', 'runFinalStep'];

// Keep the walk finite: report retries are capped; the delay's length is left out.
const serializeState = (s: Snap) =>
  JSON.stringify([
    s.value,
    s.context.step,
    s.context.failed,
    s.context.status,
    s.context.canceled,
    s.context.results.map((r) => r.ok),
    Math.min(s.context.reportAttempts, 2),
  ]);

const input = (direct: boolean): JobInput => ({
  execution: { jobId: 'job-1', executionNumber: 1, jobDocument: {} },
  direct,
  retry: { minMs: 1000, maxMs: 8000 },
  jitterSeed: 1,
});

describe.each([false, true])('job machine (direct: %s), every reachable state', (direct) => {
  const paths = getShortestPaths(jobMachine, { input: input(direct), events: eventsIn, serializeState, limit: 20_000 });
  const states = paths.map((p) => p.state);

  it('reaches every state of the chart, the four ends included', () => {
    const values = new Set(states.map((s) => JSON.stringify(s.value)));
    for (const end of ['succeeded', 'failed', 'rejected', 'canceled']) expect(values).toContain(JSON.stringify(end));
    expect(values).toContain(JSON.stringify({ running: 'step' }));
    expect(values).toContain(JSON.stringify('finalStep'));
    expect(values).toContain(JSON.stringify({ reporting: 'waiting' }));
    expect(values.has(JSON.stringify('starting'))).toBe(!direct);
  });

  it('every path ends in exactly one terminal report, and each end says what it was', () => {
    for (const path of paths.filter((p) => p.state.status === 'done')) {
      expect(path.steps.filter((s) => isTerminalReport(s.event))).toHaveLength(1);
      expect(isTerminalReport(path.steps.at(-1)!.event)).toBe(true);
      const { output, value } = path.state;
      expect(output?.status).toBe(value === 'canceled' ? 'CANCELED' : String(value).toUpperCase());
      if (value !== 'succeeded') expect(output?.reason).toBeTruthy();
    }
  });

  it('from any state, a terminal report leads to an end and nothing leads to an end without one', () => {
    for (const state of states.filter((s) => s.status === 'active')) {
      for (const event of eventsIn(state)) {
        const [next] = transition(jobMachine, state, event);
        if (isTerminalReport(event) && Object.keys(state.children).some((id) => event.type.endsWith(`.${id}`))) expect(next.status).toBe('done');
        if (next.status === 'done') expect(isTerminalReport(event)).toBe(true);
      }
    }
  });

  it('no state is a dead end: every one that is not an end can still reach one', () => {
    const stuck = deadEnds(jobMachine, states, eventsIn, serializeState, (s) => s.status === 'done');
    expect(stuck.map((s) => s.value)).toEqual([]);
  });

  it('a cancel from any state stops the step that runs (its signal kills the process group) and nothing runs after it', () => {
    for (const state of states.filter((s) => s.status === 'active')) {
      const [next, actions] = transition(jobMachine, state, cancel);
      const running = Object.keys(state.children).filter((id) => RUNNERS.includes(id));
      for (const id of running) {
        expect(Object.keys(next.children)).not.toContain(id);
        // the stop (its type is missing from the typed action union) is what aborts the actor's signal
        const stops = actions.filter((a) => String(a.type) === 'xstate.stopChild').map((a) => (a.params as { id?: string } | undefined)?.id);
        expect(stops).toContain(id);
      }
      // a computed result is still reported (the update learns whether the service ended it); anything else closes
      if (state.matches('reporting')) expect(next.value).toEqual(state.value);
      else expect(next.value).toBe('closing');
      const after = getShortestPaths(jobMachine, { fromState: next, events: eventsIn, serializeState, limit: 20_000 });
      for (const p of after) expect(Object.keys(p.state.children).filter((id) => RUNNERS.includes(id))).toEqual([]);
    }
  });

  it('a failed step that may not be ignored ends the run: only the final step runs after it', () => {
    for (const path of paths) {
      const stepsRun = path.state.context.results.filter((r) => !r.final);
      const firstDecisive = stepsRun.findIndex((r, i) => !r.ok && !plan.steps[i].ignoreStepFailure);
      if (firstDecisive >= 0) expect(stepsRun).toHaveLength(firstDecisive + 1);
    }
  });
});
