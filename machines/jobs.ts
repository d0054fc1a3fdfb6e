import { assign, enqueueActions, sendTo, setup, type AnyActorLogic } from 'xstate';
import { backoffMs } from './shared/backoff.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';
import type { Execution, JobOutput } from './job.js';

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

export interface JobsContext extends JobsInput {
  online: boolean;
  current: ExecutionId | null;
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

export const jobsVersion = '1';
export const keyOf = (e: ExecutionId) => `${e.jobId}#${e.executionNumber}`;
const isJobChild = (id: string | undefined) => id?.startsWith('job:') ?? false;

/**
 * The jobs concern: one job at a time. Asks the service for the next execution at start,
 * after every (re)connect and after every job, never relying on notify-next alone (one that
 * carries an execution not run here starts it without asking). An
 * execution that already ran here (a duplicate or stale notification, a QoS 1 redelivery,
 * a lost acknowledgement) is never run again: its stored result is sent again instead. A
 * retry (a new executionNumber) runs. When a notification shows the running job is no longer
 * the head, the service is asked, and a job it ended is canceled.
 */
export const jobsMachine = setup({
  types: {} as {
    context: JobsContext;
    events:
      | JobsFeedEvent
      | { type: `xstate.done.actor.${string}`; actorId?: string; output?: JobOutput }
      | { type: `xstate.error.actor.${string}`; actorId?: string; error?: unknown };
    input: JobsInput;
  },
  actors: {
    jobsFeed: needsCallback<JobsFeedEvent>('jobsFeed'),
    recover: needs<{ recent: string[] }, void>('recover'),
    resendPending: needs<void, void>('resendPending'),
    askNext: needs<Execution | null, void>('askNext'),
    resendResult: needs<void, { key: string }>('resendResult'),
    /** null while the execution is live at the service, else the status it ended it with (TIMED_OUT, CANCELED…) */
    checkCurrent: needs<string | null, ExecutionId>('checkCurrent'),
    job: needsCallback('job') as AnyActorLogic,
  },
  delays: { retry: ({ context }) => context.retryInMs },
  guards: {
    online: ({ context }) => context.online,
    noticePending: ({ context, event }) => context.noticePending && (event as unknown as { output: Execution | null }).output === null,
    nothingPending: ({ event }) => (event as unknown as { output: Execution | null }).output === null,
    ranAlready: ({ context, event }) => context.recent.includes(keyOf((event as unknown as { output: Execution }).output)),
    // An offer that has not run here is taken as it is: the round trip of asking saved. Not in
    // direct mode, where no IN_PROGRESS update would first tell a stale offer from a live one.
    takeOffer: ({ context, event }) => {
      const offered = (event as { offered?: Execution }).offered;
      return !context.direct && offered !== undefined && !context.recent.includes(keyOf(offered));
    },
    namesExecution: ({ event }) => event.type === 'jobs.notified' && event.execution !== null,
    namesNewExecution: ({ context, event }) => event.type === 'jobs.notified' && event.execution !== null && !context.recent.includes(keyOf(event.execution)),
    otherHead: ({ context, event }) =>
      event.type === 'jobs.notified' && context.current !== null && (event.execution === null || keyOf(event.execution) !== keyOf(context.current)),
    ended: ({ event }) => (event as unknown as { output: string | null }).output !== null,
    isJobChild: ({ event }) => isJobChild((event as { actorId?: string }).actorId),
  },
  actions: {
    startJob: enqueueActions(({ enqueue, context, event }) => {
      const execution = ((event as { output?: Execution }).output ?? (event as { offered?: Execution }).offered)!;
      enqueue.assign({ current: { jobId: execution.jobId, executionNumber: execution.executionNumber }, attempts: 0 });
      enqueue.spawnChild('job', {
        id: `job:${execution.jobId}`,
        input: { execution, direct: context.direct, retry: context.retry, jitterSeed: context.jitterSeed + context.finished },
      });
    }),
    finishJob: enqueueActions(({ enqueue, context, event }) => {
      const id = (event as { actorId?: string }).actorId!;
      const output = (event as { output?: JobOutput }).output;
      const key = output ? `${output.jobId}#${output.executionNumber}` : context.current ? keyOf(context.current) : undefined;
      const max = context.maxRecent ?? 500;
      enqueue.assign({
        current: null,
        finished: context.finished + 1,
        recent: key ? [...context.recent.filter((k) => k !== key), key].slice(-max) : context.recent,
      });
      enqueue.stopChild(id);
    }),
    scheduleRetry: assign(({ context, event }) => {
      const attempts = context.attempts + 1;
      return { attempts, retryInMs: backoffMs(context.retry, attempts, context.jitterSeed), lastError: toFailure((event as { error?: unknown }).error) };
    }),
    cancelCurrent: sendTo(
      ({ context }) => `job:${context.current?.jobId}`,
      ({ event }) => {
        const endedBy = (event as unknown as { output: string }).output;
        // 'ended': the service would not say which status (a describe of an ended execution is refused)
        const which = endedBy === 'ended' ? '' : ` (${endedBy})`;
        return { type: 'job.cancel' as const, reason: `the service ended this execution${which}`, endedBy };
      },
    ),
  },
}).createMachine({
  id: 'jobs',
  version: jobsVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, online: false, current: null, recent: [], repeat: null, attempts: 0, retryInMs: 0, lastError: null, finished: 0, noticePending: false }),
  invoke: { src: 'jobsFeed', id: 'feed', onError: { target: '.broken', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) } },
  on: {
    'jobs.ready': { actions: assign({ online: true }) },
    'jobs.offline': { actions: assign({ online: false }) },
    // Wherever no state takes it: remembered, so no wake-up is lost. A notice that the list is
    // empty, or naming a job run here already (what our own terminal update makes the
    // service announce), cannot turn an empty answer into a job: it asks nothing again.
    'jobs.notified': { guard: 'namesNewExecution', actions: assign({ noticePending: true }) },
  },
  initial: 'recovering',
  states: {
    // What a crash left: groups still running are killed, their executions reported FAILED.
    recovering: {
      invoke: {
        src: 'recover',
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
      invoke: { src: 'resendPending', onDone: 'asking', onError: { target: 'retrying', actions: 'scheduleRetry' } },
      on: { 'jobs.offline': { target: 'offline', actions: assign({ online: false }) } },
    },
    asking: {
      tags: ['healthy'],
      entry: assign({ noticePending: false }),
      // an offer taken here leaves the answer on its way unread (it would name the same job)
      on: {
        'jobs.notified': { guard: 'takeOffer', target: 'busy', actions: 'startJob' },
        'jobs.offline': { target: 'offline', actions: assign({ online: false }) },
      },
      invoke: {
        src: 'askNext',
        onDone: [
          { guard: 'noticePending', target: 'asking', reenter: true },
          { guard: 'nothingPending', target: 'idle', actions: assign({ attempts: 0, lastError: null }) },
          { guard: 'ranAlready', target: 'resending', actions: assign({ repeat: ({ event }) => keyOf(event.output!) }) },
          { target: 'busy', actions: 'startJob' },
        ],
        onError: { target: 'retrying', actions: 'scheduleRetry' },
      },
    },
    resending: {
      tags: ['healthy'],
      invoke: {
        src: 'resendResult',
        input: ({ context }) => ({ key: context.repeat! }),
        onDone: 'asking',
        onError: { target: 'retrying', actions: 'scheduleRetry' },
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
        'jobs.notified': [{ guard: 'takeOffer', target: 'busy', actions: 'startJob' }, { guard: 'namesExecution', target: 'asking' }],
        'jobs.offline': { target: 'offline', actions: assign({ online: false }) },
      },
    },
    busy: {
      tags: ['healthy', 'busy'],
      on: {
        'xstate.done.actor.*': { guard: 'isJobChild', target: '.finished', actions: 'finishJob' },
        'xstate.error.actor.*': { guard: 'isJobChild', target: '.finished', actions: 'finishJob' },
      },
      initial: 'watching',
      states: {
        watching: { on: { 'jobs.notified': { guard: 'otherHead', target: 'checking' } } },
        checking: {
          invoke: {
            src: 'checkCurrent',
            input: ({ context }) => context.current!,
            onDone: [{ guard: 'ended', target: 'watching', actions: 'cancelCurrent' }, { target: 'watching' }],
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
