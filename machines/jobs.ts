import { assign, enqueueActions, setup } from 'xstate';
import { backoffMs } from './shared/backoff.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';
import { jobMachine, type Execution, type JobOutput } from './job.js';

export interface ExecutionId {
  jobId: string;
  executionNumber: number;
}

/** Facts from the jobsFeed actor (the Jobs MQTT API on the current connection). */
export type JobsFeedEvent =
  | { type: 'jobs.ready' }
  | { type: 'jobs.offline' }
  /** `offered`: the execution with its document, when the notification carried one (AWS's does) */
  | { type: 'jobs.notified'; execution: ExecutionId | null; offered?: Execution };

export interface JobsInput {
  direct: boolean;
  retry: { minMs: number; maxMs: number };
  jitterSeed: number;
  /** finished executions remembered, so none runs twice */
  maxRecent?: number;
  /** how job programs start (config jobs.launcher), shown in the state tree */
  launcher?: string;
}

/** The job that runs: its execution and the id of its live child actor. */
export interface CurrentJob extends ExecutionId {
  childId: string;
}

export interface JobsContext extends JobsInput {
  online: boolean;
  current: CurrentJob | null;
  /** jobId#executionNumber of executions already run (or refused), newest last */
  recent: string[];
  /** the execution the service offered that had run already: its result goes again */
  repeat: string | null;
  attempts: number;
  retryInMs: number;
  lastError: Failure | null;
  finished: number;
  /** a notification came while an answer was on its way: ask once more before idling */
  noticePending: boolean;
}

/** What the jobs chart hears: the feed's facts, and its job child ending. */
export type JobsEvent =
  | JobsFeedEvent
  | { type: `xstate.done.actor.${string}`; actorId: string; output?: JobOutput }
  | { type: `xstate.error.actor.${string}`; actorId: string; error?: unknown };

export const jobsVersion = '1';
export const keyOf = (e: ExecutionId) => `${e.jobId}#${e.executionNumber}`;

/**
 * The jobs concern: one job at a time. Asks the service for the next execution at start,
 * after every (re)connect and after every job, never relying on notify-next alone (one that
 * carries an execution not run here starts it without asking). An
 * execution that already ran here (a duplicate or stale notification, a QoS 1 redelivery,
 * a lost acknowledgement) is never run again: its stored result is sent again instead. A
 * retry (a new executionNumber) runs. When a notification shows the running job is no longer
 * the head, the service is asked, and a job it ended is canceled.
 */
const jobsSetup = setup({
  types: {} as { context: JobsContext; events: JobsEvent; input: JobsInput },
  actors: {
    jobsFeed: needsCallback<JobsFeedEvent>('jobsFeed'),
    recover: needs<{ recent: string[] }, void>('recover'),
    resendPending: needs<void, void>('resendPending'),
    askNext: needs<Execution | null, void>('askNext'),
    resendResult: needs<void, { key: string }>('resendResult'),
    /** null while the execution is live at the service, else the status it ended it with (TIMED_OUT, CANCELED…) */
    checkCurrent: needs<string | null, ExecutionId>('checkCurrent'),
    /** src/ provides it with its real actors (jobMachine.provide) */
    job: jobMachine,
  },
  delays: { retry: ({ context }) => context.retryInMs },
  guards: {
    online: ({ context }) => context.online,
    noticePending: ({ context }, params: { next: Execution | null }) => context.noticePending && params.next === null,
    nothingPending: (_, params: { next: Execution | null }) => params.next === null,
    ranAlready: ({ context }, params: { next: Execution | null }) => params.next !== null && context.recent.includes(keyOf(params.next)),
    // An offer that has not run here is taken as it is: the round trip of asking saved. Not in
    // direct mode, where no IN_PROGRESS update would first tell a stale offer from a live one.
    takeOffer: ({ context }, params: { offered: Execution | undefined }) =>
      !context.direct && params.offered !== undefined && !context.recent.includes(keyOf(params.offered)),
    namesExecution: (_, params: { named: ExecutionId | null }) => params.named !== null,
    namesNewExecution: ({ context }, params: { named: ExecutionId | null }) => params.named !== null && !context.recent.includes(keyOf(params.named)),
    otherHead: ({ context }, params: { named: ExecutionId | null }) =>
      context.current !== null && (params.named === null || keyOf(params.named) !== keyOf(context.current)),
    ended: (_, params: { endedBy: string | null }) => params.endedBy !== null,
    isCurrentJob: ({ context }, params: { actorId: string }) => context.current?.childId === params.actorId,
  },
  actions: {
    startJob: enqueueActions(({ enqueue, context }, params: { execution: Execution }) => {
      const { execution } = params;
      const childId = `job:${execution.jobId}`;
      enqueue.assign({ current: { jobId: execution.jobId, executionNumber: execution.executionNumber, childId }, attempts: 0 });
      enqueue.spawnChild('job', {
        id: childId,
        input: { execution, direct: context.direct, retry: context.retry, jitterSeed: context.jitterSeed + context.finished },
      });
    }),
    finishJob: enqueueActions(({ enqueue, context }, params: { output: JobOutput | undefined }) => {
      const { current } = context;
      const key = params.output ? keyOf(params.output) : current ? keyOf(current) : undefined;
      const max = context.maxRecent ?? 500;
      enqueue.assign({
        current: null,
        finished: context.finished + 1,
        recent: key ? [...context.recent.filter((k) => k !== key), key].slice(-max) : context.recent,
      });
      if (current) enqueue.stopChild(current.childId);
    }),
    scheduleRetry: assign(({ context }, params: { error: unknown }) => {
      const attempts = context.attempts + 1;
      return { attempts, retryInMs: backoffMs(context.retry, attempts, context.jitterSeed), lastError: toFailure(params.error) };
    }),
    cancelCurrent: enqueueActions(({ enqueue, context }, params: { endedBy: string }) => {
      if (!context.current) return;
      // 'ended': the service would not say which status (a describe of an ended execution is refused)
      const which = params.endedBy === 'ended' ? '' : ` (${params.endedBy})`;
      enqueue.sendTo(context.current.childId, { type: 'job.cancel', reason: `the service ended this execution${which}`, endedBy: params.endedBy });
    }),
  },
});

/** An offer taken as it is (guard takeOffer), from wherever a notification may start a job. */
const takeOffer = {
  guard: { type: 'takeOffer', params: ({ event }: { event: Extract<JobsEvent, { type: 'jobs.notified' }> }) => ({ offered: event.offered }) },
  target: 'busy',
  actions: { type: 'startJob', params: ({ event }: { event: Extract<JobsEvent, { type: 'jobs.notified' }> }) => ({ execution: event.offered! }) },
} as const;
/** A failed request: wait, then catch up again (or go offline). */
const retryAfter = { type: 'scheduleRetry', params: ({ event }: { event: { error: unknown } }) => ({ error: event.error }) } as const;

export const jobsMachine = jobsSetup.createMachine({
  id: 'jobs',
  version: jobsVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    ...input,
    online: false,
    current: null,
    recent: [],
    repeat: null,
    attempts: 0,
    retryInMs: 0,
    lastError: null,
    finished: 0,
    noticePending: false,
  }),
  invoke: { src: 'jobsFeed', id: 'feed', onError: { target: '.broken', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) } },
  on: {
    'jobs.ready': { actions: assign({ online: true }) },
    'jobs.offline': { actions: assign({ online: false }) },
    // Wherever no state takes it: remembered, so no wake-up is lost. A notice that the list is
    // empty, or naming a job run here already (what our own terminal update makes the
    // service announce), cannot turn an empty answer into a job: it asks nothing again.
    'jobs.notified': { guard: { type: 'namesNewExecution', params: ({ event }) => ({ named: event.execution }) }, actions: assign({ noticePending: true }) },
  },
  initial: 'recovering',
  states: {
    // What a crash left: groups still running are killed, their executions reported FAILED.
    recovering: {
      invoke: {
        src: 'recover',
        id: 'recover',
        onDone: { target: 'offline', actions: assign({ recent: ({ event }) => event.output.recent }) },
        onError: { target: 'offline', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) },
      },
    },
    offline: {
      tags: ['healthy'],
      always: { guard: 'online', target: 'catchingUp' },
      on: { 'jobs.ready': { target: 'catchingUp', actions: assign({ online: true }) } },
    },
    // Results computed but not acknowledged (a restart, an outage) go first.
    catchingUp: {
      tags: ['healthy'],
      invoke: { src: 'resendPending', id: 'resendPending', onDone: 'asking', onError: { target: 'retrying', actions: retryAfter } },
      on: { 'jobs.offline': { target: 'offline', actions: assign({ online: false }) } },
    },
    asking: {
      tags: ['healthy'],
      entry: assign({ noticePending: false }),
      // an offer taken here leaves the answer on its way unread (it would name the same job)
      on: {
        'jobs.notified': takeOffer,
        'jobs.offline': { target: 'offline', actions: assign({ online: false }) },
      },
      invoke: {
        src: 'askNext',
        id: 'askNext',
        onDone: [
          { guard: { type: 'noticePending', params: ({ event }) => ({ next: event.output }) }, target: 'asking', reenter: true },
          {
            guard: { type: 'nothingPending', params: ({ event }) => ({ next: event.output }) },
            target: 'idle',
            actions: assign({ attempts: 0, lastError: null }),
          },
          {
            guard: { type: 'ranAlready', params: ({ event }) => ({ next: event.output }) },
            target: 'resending',
            actions: assign({ repeat: ({ event }) => (event.output ? keyOf(event.output) : null) }),
          },
          // nothingPending above has taken null
          { target: 'busy', actions: { type: 'startJob', params: ({ event }) => ({ execution: event.output! }) } },
        ],
        onError: { target: 'retrying', actions: retryAfter },
      },
    },
    resending: {
      tags: ['healthy'],
      invoke: {
        src: 'resendResult',
        id: 'resendResult',
        input: ({ context }) => ({ key: context.repeat ?? '' }),
        onDone: 'asking',
        onError: { target: 'retrying', actions: retryAfter },
      },
    },
    retrying: {
      tags: ['healthy'],
      after: { retry: [{ guard: 'online', target: 'catchingUp' }, { target: 'offline' }] },
      on: { 'jobs.offline': { target: 'offline', actions: assign({ online: false }) } },
    },
    idle: {
      tags: ['healthy'],
      on: {
        // an empty list leaves nothing to ask about; a job run here already is asked about
        // (the service still offers it: our result may not have arrived)
        'jobs.notified': [takeOffer, { guard: { type: 'namesExecution', params: ({ event }) => ({ named: event.execution }) }, target: 'asking' }],
        'jobs.offline': { target: 'offline', actions: assign({ online: false }) },
      },
    },
    busy: {
      tags: ['healthy', 'busy'],
      on: {
        'xstate.done.actor.*': {
          guard: { type: 'isCurrentJob', params: ({ event }) => ({ actorId: event.actorId }) },
          target: '.finished',
          actions: { type: 'finishJob', params: ({ event }) => ({ output: event.output }) },
        },
        'xstate.error.actor.*': {
          guard: { type: 'isCurrentJob', params: ({ event }) => ({ actorId: event.actorId }) },
          target: '.finished',
          actions: { type: 'finishJob', params: { output: undefined } },
        },
      },
      initial: 'watching',
      states: {
        watching: { on: { 'jobs.notified': { guard: { type: 'otherHead', params: ({ event }) => ({ named: event.execution }) }, target: 'checking' } } },
        checking: {
          invoke: {
            src: 'checkCurrent',
            id: 'checkCurrent',
            input: ({ context }) => ({ jobId: context.current?.jobId ?? '', executionNumber: context.current?.executionNumber ?? 0 }),
            onDone: [
              {
                guard: { type: 'ended', params: ({ event }) => ({ endedBy: event.output }) },
                target: 'watching',
                actions: { type: 'cancelCurrent', params: ({ event }) => ({ endedBy: event.output ?? 'ended' }) },
              },
              { target: 'watching' },
            ],
            onError: 'watching',
          },
        },
        finished: {
          always: [{ guard: 'online', target: '#jobs.asking' }, { target: '#jobs.offline' }],
        },
      },
    },
    broken: { type: 'final' },
  },
});
