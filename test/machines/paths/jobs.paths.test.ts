import { describe, expect, it } from 'vitest';
import { transition, type AnyEventObject, type SnapshotFrom } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import type { Execution, JobOutput } from '../../../machines/job.js';
import { deadEnds } from '../../support/graph.js';
import { jobsMachine, keyOf, type JobsEvent, type JobsInput } from '../../../machines/jobs.js';

type Snap = SnapshotFrom<typeof jobsMachine>;

const exec = (jobId: string): Execution => ({ jobId, executionNumber: 1, jobDocument: {} });
const named = (jobId: string) => ({ jobId, executionNumber: 1 });
const done = (id: string, output?: unknown) => ({ type: `xstate.done.actor.${id}` as const, output, actorId: id });
const error = (id: string) => ({ type: `xstate.error.actor.${id}` as const, error: new Error(`${id} failed`), actorId: id });
/** checkCurrent's answer (an invoked actor's end: XState types it, not the chart's event type) */
const checked = (output: string | null) => done('checkCurrent', output) as JobsEvent;
const finished = (jobId: string, status: JobOutput['status']): JobOutput => ({ jobId, executionNumber: 1, status, reason: null, results: [] });

// "old" ran here before the restart (the records say so); "a" and "b" are new.
const RECENT = ['old#1'];

/** What each invoked actor may come back with. */
const outcomes: Record<string, AnyEventObject[]> = {
  recover: [done('recover', { recent: RECENT }), error('recover')],
  resendPending: [done('resendPending'), error('resendPending')],
  askNext: [done('askNext', null), done('askNext', exec('a')), done('askNext', exec('old')), error('askNext')],
  resendResult: [done('resendResult'), error('resendResult')],
  checkCurrent: [done('checkCurrent', null), done('checkCurrent', 'CANCELED'), error('checkCurrent')],
};

/** Everything the jobs chart can hear in a state: the feed's facts, its actors' and its job's ends, its delay. */
function eventsIn(state: Snap): JobsEvent[] {
  if (state.status !== 'active') return [];
  const events: AnyEventObject[] = [
    { type: 'jobs.ready' },
    { type: 'jobs.offline' },
    { type: 'jobs.notified', execution: null },
    { type: 'jobs.notified', execution: named('a') },
    { type: 'jobs.notified', execution: named('b'), offered: exec('b') },
    { type: 'jobs.notified', execution: named('old'), offered: exec('old') },
  ];
  for (const id of Object.keys(state.children)) {
    if (id.startsWith('job:')) events.push(done(id, finished(id.slice(4), 'SUCCEEDED')), done(id, finished(id.slice(4), 'CANCELED')), error(id));
    else events.push(...(outcomes[id] ?? []));
  }
  if (state.matches('retrying')) events.push({ type: 'xstate.after.retry.jobs.retrying' });
  // XState's own delay event is not in the chart's event type; the walk sends it too
  return events as JobsEvent[];
}

const jobChildren = (s: Snap) => Object.keys(s.children).filter((id) => id.startsWith('job:'));
const startedJob = (before: Snap, after: Snap) => jobChildren(after).find((id) => !jobChildren(before).includes(id));

// Keep the walk finite: the counters that only grow (finished, attempts) are left out or capped.
const serializeState = (s: Snap) =>
  JSON.stringify([
    s.value,
    s.context.online,
    s.context.current,
    [...s.context.recent].sort(),
    s.context.repeat,
    s.context.noticePending,
    Math.min(s.context.attempts, 2),
  ]);

const input = (direct: boolean): JobsInput => ({ direct, retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 1 });

describe.each([false, true])('jobs machine (direct: %s), every reachable state', (direct) => {
  const paths = getShortestPaths(jobsMachine, { input: input(direct), events: eventsIn, serializeState, limit: 50_000 });
  const states = paths.map((p) => p.state);

  it('reaches idle, busy (watching and checking), resending and retrying', () => {
    const values = new Set(states.map((s) => JSON.stringify(s.value)));
    for (const v of ['idle', 'resending', 'retrying', 'offline']) expect(values).toContain(JSON.stringify(v));
    expect(values).toContain(JSON.stringify({ busy: 'watching' }));
    expect(values).toContain(JSON.stringify({ busy: 'checking' }));
  });

  it('one job at a time: busy exactly when one job child lives, and context names it', () => {
    for (const state of states) {
      const children = jobChildren(state);
      expect(children.length).toBeLessThanOrEqual(1);
      expect(state.matches('busy')).toBe(children.length === 1);
      expect(state.context.current?.childId ?? null).toBe(children[0] ?? null);
    }
  });

  it('never starts an execution that ran here; every job that starts ends exactly once, is stopped and remembered', () => {
    for (const state of states) {
      for (const event of eventsIn(state)) {
        const [next, actions] = transition(jobsMachine, state, event);
        const started = startedJob(state, next);
        if (started) expect(state.context.recent).not.toContain(`${started.slice(4)}#1`);
        const current = state.context.current;
        if (current && (event.type === `xstate.done.actor.${current.childId}` || event.type === `xstate.error.actor.${current.childId}`)) {
          expect(jobChildren(next)).toEqual([]);
          expect(actions.some((a) => String(a.type) === 'xstate.stopChild')).toBe(true);
          expect(next.context.recent).toContain(keyOf(current));
          expect(next.context.current).toBeNull();
        }
      }
    }
  });

  it('a job the service ended is told to cancel (which kills its process group), and only that job', () => {
    const checking = states.filter((s) => s.matches({ busy: 'checking' }));
    expect(checking.length).toBeGreaterThan(0);
    for (const state of checking) {
      const [, actions] = transition(jobsMachine, state, checked('CANCELED'));
      const sends = actions.filter((a) => a.type === 'xstate.sendTo');
      expect(sends).toHaveLength(1);
      const { to, event } = sends[0].params as { to: { id: string }; event: AnyEventObject };
      expect(to.id).toBe(state.context.current?.childId);
      expect(event).toMatchObject({ type: 'job.cancel', endedBy: 'CANCELED' });
      const [, quiet] = transition(jobsMachine, state, checked(null));
      expect(quiet.filter((a) => a.type === 'xstate.sendTo')).toEqual([]);
    }
  });

  it('no state is a dead end: from every one, a job can still be started (idle or busy is reachable)', () => {
    const stuck = deadEnds(jobsMachine, states, eventsIn, serializeState, (s) => s.matches('idle') || s.matches('busy'));
    expect(stuck.map((s) => s.value)).toEqual([]);
  });
});
