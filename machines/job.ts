import { assign, enqueueActions, setup } from 'xstate';
import { backoffMs } from './shared/backoff.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure } from './shared/types.js';

/** One execution of a job on this thing, as the service names it. */
export interface Execution {
  jobId: string;
  executionNumber: number;
  versionNumber?: number;
  jobDocument: unknown;
}

/** How a step's program starts, as validateJob checked it (allowlist, user): plain data the
 * chart hands to runStep untouched. */
export interface StepProgram {
  /** the real program, after realpath */
  path: string;
  args: string[];
  timeoutSeconds: number;
  /** stderr lines allowed before the step fails */
  allowStdErr: number;
  /** another user's identity; absent: the agent's own */
  runAs?: { uid: number; gid: number; home: string };
}

/** One checked step of the plan: the chart reads its name and failure policy. */
export interface PlannedStep {
  name: string;
  ignoreStepFailure: boolean;
  program: StepProgram;
}

/** The checked plan of a job, the validateJob actor's output. */
export interface Plan {
  steps: PlannedStep[];
  finalStep?: PlannedStep;
  /** report one stdout tail across all steps (the document's includeStdOut) */
  includeStdOut: boolean;
}
export type Validation = { ok: true; plan: Plan } | { ok: false; reason: string };

/** What a step ended as: the runStep actor's output. The output streams are already cut to
 * what a report can carry (a statusDetails value), so the chart never holds more. */
export interface StepResult {
  name: string;
  ok: boolean;
  reason?: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
}

/** A step's result with the document's policy for it, as the report weighs it. */
export interface RecordedStep extends StepResult {
  ignoreStepFailure: boolean;
  /** the document's finalStep: its failure fails the job whatever ignoreStepFailure says */
  final: boolean;
}

/** What runStep is given: the checked step of this execution. */
export interface RunStepInput {
  execution: Execution;
  step: PlannedStep;
}

export interface ReportInput {
  execution: Execution;
  status: TerminalStatus;
  reason: string | null;
  results: RecordedStep[];
  includeStdOut: boolean;
}

export type TerminalStatus = 'SUCCEEDED' | 'FAILED' | 'REJECTED';

/** What the terminal update came to: `endedBy` names the status the service had ended the
 * execution with first (its timer ran out, an operator canceled), so the result was not taken. */
export interface Report {
  endedBy: string | null;
}

export interface JobInput {
  execution: Execution;
  /** the seed's mode: report only the terminal status, no IN_PROGRESS first */
  direct: boolean;
  /** reporting retries: first and largest delay, in ms */
  retry: { minMs: number; maxMs: number };
  jitterSeed: number;
}

export interface JobContext extends JobInput {
  plan: Plan | null;
  step: number;
  results: RecordedStep[];
  failed: boolean;
  status: TerminalStatus | null;
  reason: string | null;
  reportAttempts: number;
  retryInMs: number;
  /** the service ended the execution (canceled, timed out) before we reported */
  canceled: boolean;
  /** the status it ended it with, when known */
  endedBy: string | null;
}

/** What the reportProgress actor is told as a later step starts: it tells the service, unawaited. */
export interface ProgressEvent {
  type: 'job.progress';
  /** 0-based position among all steps, the final step last */
  index: number;
  count: number;
  step: string;
}

/** `endedBy`: the status the service ended the execution with (TIMED_OUT, CANCELED, REMOVED…), when known */
export type JobEvent = { type: 'job.cancel'; reason: string; endedBy?: string };

export interface JobOutput {
  jobId: string;
  executionNumber: number;
  /** what the service was told, or CANCELED when the service ended it first */
  status: TerminalStatus | 'CANCELED';
  reason: string | null;
  results: RecordedStep[];
}

export const jobVersion = '1';

const currentStep = (c: JobContext) => (c.plan && c.step < c.plan.steps.length ? c.plan.steps[c.step] : undefined);
const stepCount = (plan: Plan | null) => (plan ? plan.steps.length + (plan.finalStep ? 1 : 0) : 0);
const failureReason = (prefix: string, result: StepResult) => `${prefix} "${result.name}" failed: ${result.reason ?? 'unknown'}`;

/**
 * One job, from its document to the terminal update: note that it was received (so it never
 * runs twice), validate the whole document (nothing runs if any step is refused), say
 * IN_PROGRESS so the service's timers are armed, run the steps in order (a failed step ends
 * the run unless it may be ignored), run the final step whatever happened (its failure fails
 * the job), then report until the service acknowledges. A cancel from the service stops
 * whatever runs (its process group is killed) and ends the job unreported.
 */
export const jobMachine = setup({
  types: {} as { context: JobContext; events: JobEvent; input: JobInput; output: JobOutput },
  actors: {
    recordReceived: needs<void, { execution: Execution }>('recordReceived'),
    validateJob: needs<Validation, { execution: Execution }>('validateJob'),
    markInProgress: needs<void, { execution: Execution; step: string; count: number }>('markInProgress'),
    runStep: needs<StepResult, RunStepInput>('runStep'),
    reportResult: needs<Report, ReportInput>('reportResult'),
    recordCancel: needs<void, { execution: Execution; reason: string | null; endedBy: string | null }>('recordCancel'),
    /** for the job's life: says IN_PROGRESS naming each later step as it starts (no round trip between steps) */
    reportProgress: needsCallback<ProgressEvent, { execution: Execution }>('reportProgress'),
  },
  delays: { retry: ({ context }) => context.retryInMs },
  guards: {
    isValid: (_, params: { validation: Validation }) => params.validation.ok,
    /** valid, and in direct mode: no IN_PROGRESS first */
    isValidDirect: ({ context }, params: { validation: Validation }) => params.validation.ok && context.direct,
    hasNextStep: ({ context }) => !context.failed && currentStep(context) !== undefined,
    hasFinalStep: ({ context }) => context.plan?.finalStep !== undefined,
    succeeded: ({ context }) => context.status === 'SUCCEEDED',
    rejected: ({ context }) => context.status === 'REJECTED',
    endedByService: (_, params: { report: Report }) => params.report.endedBy !== null,
  },
  actions: {
    takeValidation: assign((_, params: { validation: Validation }) =>
      params.validation.ok ? { plan: params.validation.plan } : { status: 'REJECTED' as const, reason: params.validation.reason },
    ),
    refuse: assign((_, params: { reason: string }) => ({ status: 'REJECTED' as const, reason: params.reason })),
    recordStep: assign(({ context }, params: { result: StepResult }) => {
      const { result } = params;
      const ignoreStepFailure = currentStep(context)?.ignoreStepFailure ?? false;
      const failed = !result.ok && !ignoreStepFailure;
      return {
        results: [...context.results, { ...result, ignoreStepFailure, final: false }],
        step: context.step + 1,
        failed: context.failed || failed,
        reason: failed && !context.reason ? failureReason('step', result) : context.reason,
      };
    }),
    recordFinalStep: assign(({ context }, params: { result: StepResult }) => {
      const { result } = params;
      return {
        results: [...context.results, { ...result, ignoreStepFailure: false, final: true }],
        failed: context.failed || !result.ok,
        reason: !result.ok && !context.reason ? failureReason('final step', result) : context.reason,
      };
    }),
    recordCrash: assign(({ context }, params: { error: unknown }) => ({
      failed: true,
      reason: context.reason ?? `agent error: ${toFailure(params.error).message}`,
    })),
    takeCancel: assign((_, params: { reason: string; endedBy: string | null }) => ({ canceled: true, reason: params.reason, endedBy: params.endedBy })),
    // The first step was named by markInProgress; direct mode reports only the end.
    announceStep: enqueueActions(({ enqueue, context }, params: { index: number; step: PlannedStep | undefined }) => {
      if (context.direct || params.index === 0 || !params.step) return;
      enqueue.sendTo('progress', { type: 'job.progress', index: params.index, count: stepCount(context.plan), step: params.step.name } satisfies ProgressEvent);
    }),
    decide: assign(({ context }) => ({ status: context.status ?? (context.failed ? ('FAILED' as const) : ('SUCCEEDED' as const)) })),
    scheduleRetry: assign(({ context }) => {
      const attempt = context.reportAttempts + 1;
      return { reportAttempts: attempt, retryInMs: backoffMs(context.retry, attempt, context.jitterSeed) };
    }),
  },
}).createMachine({
  id: 'job',
  version: jobVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    ...input,
    plan: null,
    step: 0,
    results: [],
    failed: false,
    status: null,
    reason: null,
    reportAttempts: 0,
    retryInMs: 0,
    canceled: false,
    endedBy: null,
  }),
  initial: 'queued',
  invoke: { src: 'reportProgress', id: 'progress', input: ({ context }) => ({ execution: context.execution }) },
  on: {
    'job.cancel': { target: '.closing', actions: { type: 'takeCancel', params: ({ event }) => ({ reason: event.reason, endedBy: event.endedBy ?? null }) } },
  },
  states: {
    // Written down before anything is looked at: an execution received here never runs twice.
    queued: {
      invoke: {
        src: 'recordReceived',
        id: 'recordReceived',
        input: ({ context }) => ({ execution: context.execution }),
        onDone: 'validating',
        onError: {
          target: 'reporting',
          actions: { type: 'refuse', params: ({ event }) => ({ reason: `cannot record the job: ${toFailure(event.error).message}` }) },
        },
      },
    },
    validating: {
      tags: ['busy'],
      invoke: {
        src: 'validateJob',
        id: 'validateJob',
        input: ({ context }) => ({ execution: context.execution }),
        onDone: [
          {
            guard: { type: 'isValidDirect', params: ({ event }) => ({ validation: event.output }) },
            target: 'running',
            actions: { type: 'takeValidation', params: ({ event }) => ({ validation: event.output }) },
          },
          {
            guard: { type: 'isValid', params: ({ event }) => ({ validation: event.output }) },
            target: 'starting',
            actions: { type: 'takeValidation', params: ({ event }) => ({ validation: event.output }) },
          },
          { target: 'reporting', actions: { type: 'takeValidation', params: ({ event }) => ({ validation: event.output }) } },
        ],
        onError: {
          target: 'reporting',
          actions: { type: 'refuse', params: ({ event }) => ({ reason: `invalid job document: ${toFailure(event.error).message}` }) },
        },
      },
    },
    starting: {
      tags: ['busy'],
      invoke: {
        src: 'markInProgress',
        id: 'markInProgress',
        input: ({ context }) => ({ execution: context.execution, step: context.plan?.steps[0]?.name ?? '', count: stepCount(context.plan) }),
        onDone: 'running',
        // The service would not take IN_PROGRESS: the execution was canceled or timed out meanwhile.
        onError: {
          target: 'closing',
          actions: { type: 'takeCancel', params: ({ event }) => ({ reason: `could not start: ${toFailure(event.error).message}`, endedBy: null }) },
        },
      },
    },
    // Each step's actor is invoked only for a step that runs: a state left at once by an
    // eventless transition would still create (and stop) its invoked actor on the way.
    running: {
      tags: ['busy'],
      initial: 'next',
      states: {
        next: {
          always: [{ guard: 'hasNextStep', target: 'step' }, { guard: 'hasFinalStep', target: '#job.finalStep' }, { target: '#job.reporting' }],
        },
        step: {
          entry: { type: 'announceStep', params: ({ context }) => ({ index: context.step, step: currentStep(context) }) },
          invoke: {
            src: 'runStep',
            id: 'runStep',
            input: ({ context }) => ({ execution: context.execution, step: currentStep(context)! }),
            onDone: { target: 'next', actions: { type: 'recordStep', params: ({ event }) => ({ result: event.output }) } },
            onError: { target: 'next', actions: { type: 'recordCrash', params: ({ event }) => ({ error: event.error }) } },
          },
        },
      },
    },
    finalStep: {
      tags: ['busy'],
      entry: { type: 'announceStep', params: ({ context }) => ({ index: context.plan?.steps.length ?? 0, step: context.plan?.finalStep }) },
      invoke: {
        src: 'runStep',
        id: 'runFinalStep',
        input: ({ context }) => ({ execution: context.execution, step: context.plan!.finalStep! }),
        onDone: { target: 'reporting', actions: { type: 'recordFinalStep', params: ({ event }) => ({ result: event.output }) } },
        onError: { target: 'reporting', actions: { type: 'recordCrash', params: ({ event }) => ({ error: event.error }) } },
      },
    },
    reporting: {
      tags: ['busy'],
      entry: 'decide',
      // The result is computed: the update itself learns whether the service ended the
      // execution first (and our own terminal update also makes the head change).
      on: { 'job.cancel': {} },
      initial: 'sending',
      states: {
        sending: {
          invoke: {
            src: 'reportResult',
            id: 'reportResult',
            input: ({ context }) => ({
              execution: context.execution,
              status: context.status!,
              reason: context.reason,
              results: context.results,
              includeStdOut: context.plan?.includeStdOut ?? false,
            }),
            onDone: [
              {
                guard: { type: 'endedByService', params: ({ event }) => ({ report: event.output }) },
                target: '#job.canceled',
                actions: {
                  type: 'takeCancel',
                  params: ({ context, event }) => ({
                    reason: `the service ended this execution first (${event.output.endedBy}); the result was not taken`,
                    endedBy: context.endedBy,
                  }),
                },
              },
              { guard: 'succeeded', target: '#job.succeeded' },
              { guard: 'rejected', target: '#job.rejected' },
              { target: '#job.failed' },
            ],
            onError: { target: 'waiting', actions: 'scheduleRetry' },
          },
        },
        // Offline, throttled or no answer: the result is kept and sent again.
        waiting: { after: { retry: 'sending' } },
      },
    },
    // The service ended the execution: what ran was stopped on the way here (its actor's
    // signal kills the process group); record it.
    closing: {
      invoke: {
        src: 'recordCancel',
        id: 'recordCancel',
        input: ({ context }) => ({ execution: context.execution, reason: context.reason, endedBy: context.endedBy }),
        onDone: 'canceled',
        onError: 'canceled',
      },
      on: { 'job.cancel': {} },
    },
    succeeded: { type: 'final' },
    failed: { type: 'final' },
    rejected: { type: 'final' },
    canceled: { type: 'final' },
  },
  output: ({ context }) => ({
    jobId: context.execution.jobId,
    executionNumber: context.execution.executionNumber,
    status: context.canceled || !context.status ? 'CANCELED' : context.status,
    reason: context.reason,
    results: context.results,
  }),
});
