import { and, assign, setup } from 'xstate';
import { backoffMs } from './shared/backoff.js';
import { needs } from './shared/placeholders.js';
import { toFailure } from './shared/types.js';

/** One execution of a job on this thing, as the service names it. */
export interface Execution {
  jobId: string;
  executionNumber: number;
  versionNumber?: number;
  jobDocument: unknown;
}

/** The checked plan of a job, as the validateJob actor returns it (opaque to the chart
 * but for what it needs: the step names and per-step failure policy). */
export interface PlannedStep {
  name: string;
  ignoreStepFailure: boolean;
}
export interface Plan {
  steps: PlannedStep[];
  finalStep?: PlannedStep;
}
export type Validation = { ok: true; plan: Plan } | { ok: false; reason: string };

/** What a step ended as (the runStep actor's output, kept short in context). */
export interface StepResult {
  name: string;
  ok: boolean;
  reason?: string;
  exitCode: number | null;
  durationMs: number;
  final?: boolean;
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
  results: StepResult[];
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

/** `endedBy`: the status the service ended the execution with (TIMED_OUT, CANCELED, REMOVED…), when known */
export type JobEvent = { type: 'job.cancel'; reason: string; endedBy?: string };

export interface JobOutput {
  jobId: string;
  executionNumber: number;
  /** what the service was told, or CANCELED when the service ended it first */
  status: TerminalStatus | 'CANCELED';
  reason: string | null;
  results: StepResult[];
}

export const jobVersion = '1';

const currentStep = (c: JobContext) => (c.plan && c.step < c.plan.steps.length ? c.plan.steps[c.step] : undefined);

/**
 * One job, from its document to the terminal update: validate the whole document first
 * (nothing runs if any step is refused), say IN_PROGRESS so the service's timers are armed,
 * run the steps in order (a failed step ends the run unless it may be ignored), run the
 * final step whatever happened (its failure fails the job), then report until the service
 * acknowledges. A cancel from the service stops whatever runs and ends the job unreported.
 */
export const jobMachine = setup({
  types: {} as { context: JobContext; events: JobEvent; input: JobInput; output: JobOutput },
  actors: {
    validateJob: needs<Validation, { execution: Execution }>('validateJob'),
    markInProgress: needs<void, { execution: Execution; step: string }>('markInProgress'),
    runStep: needs<StepResult, { execution: Execution; index: number; final: boolean }>('runStep'),
    reportResult: needs<Report | void, { execution: Execution; status: TerminalStatus; reason: string | null; results: StepResult[] }>('reportResult'),
    recordCancel: needs<void, { execution: Execution; reason: string | null; endedBy: string | null }>('recordCancel'),
  },
  delays: { retry: ({ context }) => context.retryInMs },
  guards: {
    isValid: ({ event }) => (event as unknown as { output: Validation }).output.ok,
    direct: ({ context }) => context.direct,
    hasNextStep: ({ context }) => !context.failed && currentStep(context) !== undefined,
    hasFinalStep: ({ context }) => context.plan?.finalStep !== undefined,
    succeeded: ({ context }) => context.status === 'SUCCEEDED',
    rejected: ({ context }) => context.status === 'REJECTED',
    endedByService: ({ event }) => Boolean((event as unknown as { output?: Report }).output?.endedBy),
  },
  actions: {
    takePlan: assign({ plan: ({ event }) => (event as unknown as { output: { ok: true; plan: Plan } }).output.plan }),
    refuse: assign(({ event }) => ({
      status: 'REJECTED' as const,
      reason: (event as unknown as { output: { ok: false; reason: string } }).output.reason,
    })),
    recordStep: assign(({ context, event }) => {
      const result = (event as unknown as { output: StepResult }).output;
      const step = currentStep(context);
      const failed = !result.ok && !(step?.ignoreStepFailure ?? false);
      return {
        results: [...context.results, result],
        step: context.step + 1,
        failed: context.failed || failed,
        reason: failed && !context.reason ? `step "${result.name}" failed: ${result.reason ?? 'unknown'}` : context.reason,
      };
    }),
    recordFinalStep: assign(({ context, event }) => {
      const result = { ...(event as unknown as { output: StepResult }).output, final: true };
      return {
        results: [...context.results, result],
        failed: context.failed || !result.ok,
        reason: !result.ok && !context.reason ? `final step "${result.name}" failed: ${result.reason ?? 'unknown'}` : context.reason,
      };
    }),
    recordCrash: assign(({ context, event }) => ({
      failed: true,
      reason: context.reason ?? `agent error: ${toFailure((event as { error?: unknown }).error).message}`,
    })),
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
  context: ({ input }) => ({ ...input, plan: null, step: 0, results: [], failed: false, status: null, reason: null, reportAttempts: 0, retryInMs: 0, canceled: false, endedBy: null }),
  initial: 'queued',
  on: {
    'job.cancel': { target: '.closing', actions: assign({ canceled: true, reason: ({ event }) => event.reason, endedBy: ({ event }) => event.endedBy ?? null }) },
  },
  states: {
    queued: { always: 'validating' },
    validating: {
      tags: ['busy'],
      invoke: {
        src: 'validateJob',
        input: ({ context }) => ({ execution: context.execution }),
        onDone: [
          { guard: and(['isValid', 'direct']), target: 'running', actions: 'takePlan' },
          { guard: 'isValid', target: 'starting', actions: 'takePlan' },
          { target: 'reporting', actions: 'refuse' },
        ],
        onError: { target: 'reporting', actions: assign({ status: 'REJECTED', reason: ({ event }) => `invalid job document: ${toFailure(event.error).message}` }) },
      },
    },
    starting: {
      tags: ['busy'],
      invoke: {
        src: 'markInProgress',
        input: ({ context }) => ({ execution: context.execution, step: context.plan?.steps[0]?.name ?? '' }),
        onDone: 'running',
        // The service would not take IN_PROGRESS: the execution was canceled or timed out meanwhile.
        onError: { target: 'closing', actions: assign({ canceled: true, reason: ({ event }) => `could not start: ${toFailure(event.error).message}` }) },
      },
    },
    // Each step's actor is invoked only for a step that runs: a state left at once by an
    // eventless transition would still create (and stop) its invoked actor on the way.
    running: {
      tags: ['busy'],
      initial: 'next',
      states: {
        next: {
          always: [
            { guard: 'hasNextStep', target: 'step' },
            { guard: 'hasFinalStep', target: '#job.finalStep' },
            { target: '#job.reporting' },
          ],
        },
        step: {
          invoke: {
            src: 'runStep',
            input: ({ context }) => ({ execution: context.execution, index: context.step, final: false }),
            onDone: { target: 'next', actions: 'recordStep' },
            onError: { target: 'next', actions: 'recordCrash' },
          },
        },
      },
    },
    finalStep: {
      tags: ['busy'],
      invoke: {
        src: 'runStep',
        input: ({ context }) => ({ execution: context.execution, index: -1, final: true }),
        onDone: { target: 'reporting', actions: 'recordFinalStep' },
        onError: { target: 'reporting', actions: 'recordCrash' },
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
            input: ({ context }) => ({ execution: context.execution, status: context.status!, reason: context.reason, results: context.results }),
            onDone: [
              {
                guard: 'endedByService',
                target: '#job.canceled',
                actions: assign({
                  canceled: true,
                  reason: ({ event }) => `the service ended this execution first (${(event.output as Report).endedBy}); the result was not taken`,
                }),
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
    // The service ended the execution: what runs was stopped with this state's entry; record it.
    closing: {
      invoke: {
        src: 'recordCancel',
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
