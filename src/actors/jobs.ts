import type { MqttClient } from 'mqtt';
import { fromCallback, fromPromise } from 'xstate';
import { jobMachine, type Execution, type Report, type StepResult, type TerminalStatus, type Validation } from '../../machines/job.js';
import type { ExecutionId, JobsFeedEvent } from '../../machines/jobs.js';
import type { Config } from '../config/schema.js';
import { type ExecutionPayload, JobsApi, JobsRejected } from '../jobs/api.js';
import { parseJobDocument, type JobPlan } from '../jobs/document.js';
import { executionKey, type JobRecord, JobRecords } from '../jobs/records.js';
import { resultDetails, type ReportedStep } from '../jobs/report.js';
import { launcherFor } from '../jobs/launch.js';
import { checkStep, runStep, type CheckedStep } from '../jobs/run-step.js';
import { identify, killRecordedGroup } from '../jobs/process-group.js';
import { JobStats } from '../jobs/stats.js';
import { statusDetails } from '../jobs/status-details.js';
import type { Logger } from '../log.js';
import type { Slot } from '../slot.js';

export interface JobsDeps {
  config: Config;
  session: Slot<MqttClient>;
  log: Logger;
}

const TERMINAL_AT_SERVICE = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REMOVED', 'CANCELED'];

/**
 * The real actors of the jobs and job charts. The data plane (job plans, step output, the
 * records file) stays here; the charts see names, outcomes and reasons.
 */
export function jobsActors(deps: JobsDeps) {
  const { config, log } = deps;
  const api = new JobsApi(config.thingName, config.jobs.answerTimeoutSeconds * 1000);
  const stats = new JobStats();
  // main.ts has checked that a configured posix_spawn loads; a disabled concern loads nothing
  const launcher = config.jobs.enabled ? launcherFor(config.jobs.launcher) : undefined;
  stats.launcher = config.jobs.launcher;
  if (config.jobs.enabled) log.info({ launcher: config.jobs.launcher }, `job programs start with ${config.jobs.launcher}`);
  let records: JobRecords | undefined;
  const openRecords = async () =>
    (records ??= await JobRecords.open(config.stateDir, (error) => log.warn({ err: String(error) }, 'cannot write the jobs history (tried again with the next)')));
  /** per execution: the checked plan and each step's full outcome */
  const live = new Map<
    string,
    { plan: JobPlan; checks: CheckedStep[]; outcomes: ReportedStep[]; abort: AbortController; progress?: Promise<unknown> }
  >();
  /** executions whose terminal update is on its way (a refused document has no live plan) */
  const reporting = new Set<string>();
  /** What the service shows while a step runs: the complete map every time (replace or merge, spec §10). */
  const progressDetails = (plan: JobPlan | undefined, index: number, name: string) =>
    statusDetails([
      ['step', name],
      ['stepIndex', index + 1],
      ['stepCount', plan ? plan.steps.length + (plan.finalStep ? 1 : 0) : undefined],
    ]);

  /**
   * Sends a stored result; a rejection that shows the service already has it, or has ended the
   * execution, settles it too. Returns the status the service ended it with first (TIMED_OUT,
   * CANCELED…), if it did: the result was not taken; the record keeps it, marked `endedBy`.
   */
  async function sendResult(record: JobRecord): Promise<string | undefined> {
    const status = record.status === 'CANCELED' ? undefined : record.status;
    let endedBy: string | undefined;
    if (status) {
      try {
        await api.update(record.jobId, { status, statusDetails: record.statusDetails, executionNumber: record.executionNumber });
      } catch (error) {
        if (!(error instanceof JobsRejected)) throw error; // offline, no answer: try again later
        const now = error.executionState?.status;
        if (error.code === 'InvalidStateTransition' && now === status) log.info({ jobId: record.jobId }, 'result had arrived already');
        else if (['InvalidStateTransition', 'ResourceNotFound'].includes(error.code)) {
          // not an error of ours and nothing to retry: the service's timer or an operator was first
          endedBy = now ?? (error.code === 'ResourceNotFound' ? 'REMOVED' : 'ended');
          log.warn({ jobId: record.jobId, code: error.code, now }, 'the service ended this execution first; result dropped');
        } else if (['RequestThrottled', 'InternalError'].includes(error.code)) throw error;
        else log.error({ jobId: record.jobId, code: error.code, err: error.message }, 'result refused by the service');
      }
    }
    // Reaches the history file a moment later: were it lost meanwhile, the result would only
    // be sent once more, and "already <status>" counts as delivered.
    const store = await openRecords();
    void store.put(record.key, { jobId: record.jobId, executionNumber: record.executionNumber, state: 'done', finishedAt: Date.now(), ...(endedBy ? { endedBy } : {}) }).catch((error) =>
      log.warn({ jobId: record.jobId, err: String(error) }, 'cannot write the job record'),
    );
    return endedBy;
  }

  const jobsFeed = fromCallback<JobsFeedEvent, void>(({ sendBack }) => {
    const onReady = () => sendBack({ type: 'jobs.ready' });
    const onNotify = (e: ExecutionPayload | null) => {
      const offered =
        e && typeof e.jobId === 'string' && /^[a-zA-Z0-9_-]{1,64}$/.test(e.jobId) && Number.isInteger(e.executionNumber) && e.jobDocument !== undefined
          ? { jobId: e.jobId, executionNumber: e.executionNumber, versionNumber: e.versionNumber, jobDocument: e.jobDocument }
          : undefined;
      sendBack({ type: 'jobs.notified', execution: e ? { jobId: e.jobId, executionNumber: e.executionNumber } : null, offered });
    };
    api.on('ready', onReady);
    api.on('notify-next', onNotify);
    const follow = (client: MqttClient | undefined) => {
      if (!client) {
        api.detach();
        return sendBack({ type: 'jobs.offline' });
      }
      api.attach(client).catch((error) => log.warn({ err: String(error) }, 'cannot subscribe to the jobs topics'));
    };
    const unsubscribe = deps.session.subscribe(follow);
    if (deps.session.current) follow(deps.session.current);
    return () => {
      unsubscribe();
      api.off('ready', onReady);
      api.off('notify-next', onNotify);
      api.detach();
      for (const job of live.values()) job.abort.abort();
      void records?.flush().catch(() => {});
    };
  });

  const recover = fromPromise<{ recent: string[] }, void>(async () => {
    const store = await openRecords();
    for (const record of store.all().filter((r) => r.state === 'running')) {
      if (record.group) {
        const killed = killRecordedGroup(record.group);
        if (killed > 0) log.warn({ jobId: record.jobId, pgid: record.group.pgid, killed }, 'killed what the interrupted job left running');
      }
      const reason = 'interrupted: the agent stopped while the job ran; it is not run again';
      await store.put(record.key, { ...record, state: 'reporting', status: 'FAILED', reason, statusDetails: statusDetails([['reason', reason]]) });
    }
    return { recent: store.all().map((r) => r.key) };
  });

  const resendPending = fromPromise<void, void>(async () => {
    const store = await openRecords();
    for (const record of store.all().filter((r) => r.state === 'reporting')) await sendResult(record);
  });

  const askNext = fromPromise<Execution | null, void>(async () => {
    const next = await api.nextGet();
    if (!next) return null;
    return { jobId: next.jobId, executionNumber: next.executionNumber, versionNumber: next.versionNumber, jobDocument: next.jobDocument };
  });

  const resendResult = fromPromise<void, { key: string }>(async ({ input }) => {
    const record = (await openRecords()).get(input.key);
    if (record?.status) await sendResult({ ...record, state: 'reporting' });
    else log.warn({ key: input.key }, 'offered again, but no result is stored; not run again');
  });

  const checkCurrent = fromPromise<string | null, ExecutionId>(async ({ input }) => {
    // Our own terminal update moved the head: nothing to ask, the report learns the rest.
    if (reporting.has(executionKey(input.jobId, input.executionNumber))) return null;
    try {
      const status = String((await api.describe(input.jobId, input.executionNumber))?.status);
      return TERMINAL_AT_SERVICE.includes(status) ? status : null;
    } catch (error) {
      if (error instanceof JobsRejected && error.code === 'ResourceNotFound') return 'REMOVED';
      if (error instanceof JobsRejected && error.code === 'TerminalStateReached') return error.executionState?.status ?? 'ended';
      throw error;
    }
  });

  const job = jobMachine.provide({
    actors: {
      validateJob: fromPromise<Validation, { execution: Execution }>(async ({ input: { execution } }) => {
        const key = executionKey(execution.jobId, execution.executionNumber);
        await (await openRecords()).put(key, { jobId: execution.jobId, executionNumber: execution.executionNumber, state: 'running' });
        log.info({ jobId: execution.jobId, executionNumber: execution.executionNumber }, 'job received');
        const parsed = parseJobDocument(execution.jobDocument, { timeoutSeconds: config.jobs.defaultTimeoutSeconds });
        if (!parsed.ok) {
          stats.refusals++;
          return parsed;
        }
        // Every step is checked before the first one runs: a refused step means nothing runs.
        const checks: CheckedStep[] = [];
        for (const step of [...parsed.plan.steps, ...(parsed.plan.finalStep ? [parsed.plan.finalStep] : [])]) {
          const check = await checkStep(step, config.jobs);
          if (!check.ok) {
            stats.refusals++;
            return { ok: false, reason: `step "${step.name}": ${check.reason}` };
          }
          checks.push(check);
        }
        live.set(key, { plan: parsed.plan, checks, outcomes: [], abort: new AbortController() });
        const names = (s: { name: string; ignoreStepFailure: boolean }) => ({ name: s.name, ignoreStepFailure: s.ignoreStepFailure });
        return { ok: true, plan: { steps: parsed.plan.steps.map(names), finalStep: parsed.plan.finalStep && names(parsed.plan.finalStep) } };
      }),
      markInProgress: fromPromise<void, { execution: Execution; step: string }>(async ({ input }) => {
        // A refusal (canceled meanwhile) ends the job; no answer is asked again a few times.
        for (let attempt = 1; ; attempt++) {
          try {
            return void (await api.update(input.execution.jobId, {
              status: 'IN_PROGRESS',
              executionNumber: input.execution.executionNumber,
              statusDetails: progressDetails(live.get(executionKey(input.execution.jobId, input.execution.executionNumber))?.plan, 0, input.step),
            }));
          } catch (error) {
            if (error instanceof JobsRejected || attempt === 3) throw error;
          }
        }
      }),
      runStep: fromPromise<StepResult, { execution: Execution; index: number; final: boolean }>(async ({ input, signal }) => {
        const key = executionKey(input.execution.jobId, input.execution.executionNumber);
        const state = live.get(key);
        if (!state) throw new Error('no plan for this execution');
        const index = input.final ? state.plan.steps.length : input.index;
        const step = input.final ? state.plan.finalStep! : state.plan.steps[index];
        const onAbort = () => state.abort.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        // Progress of a later step: not awaited, so the step starts at once (the first step's
        // IN_PROGRESS went before anything ran). One connection keeps these in order; the
        // terminal update waits for the last answer (reportResult), so none overtakes it.
        // No expectedVersion: nothing to mismatch (spec pitfall 10).
        if (index > 0 && !config.jobs.directStatus) {
          const { jobId, executionNumber } = input.execution;
          state.progress = api
            .update(jobId, { status: 'IN_PROGRESS', executionNumber, statusDetails: progressDetails(state.plan, index, step.name) })
            .catch((error) => log.info({ jobId, step: step.name, err: String(error) }, 'progress update not taken'));
        }
        const store = await openRecords();
        const outcome = await runStep(step, {
          jobId: input.execution.jobId,
          allowlist: config.jobs.allowlist,
          handlerDir: config.jobs.handlerDir,
          launcher,
          signal: state.abort.signal,
          onSpawn: (pgid) =>
            void store.put(key, { jobId: input.execution.jobId, executionNumber: input.execution.executionNumber, group: identify(pgid) }).catch((error) =>
              log.error({ jobId: input.execution.jobId, pgid, err: String(error) }, 'cannot record the process group'),
            ),
        }, state.checks[index]);
        signal.removeEventListener('abort', onAbort);
        state.outcomes.push({ ...outcome, ignoreStepFailure: step.ignoreStepFailure, final: input.final });
        stats.stepSeconds += outcome.durationMs / 1000;
        if (outcome.timedOut) stats.stepTimeouts++;
        log.info({ jobId: input.execution.jobId, step: step.name, ok: outcome.ok, exitCode: outcome.exitCode, ms: outcome.durationMs, reason: outcome.reason }, 'step finished');
        return { name: outcome.name, ok: outcome.ok, reason: outcome.reason, exitCode: outcome.exitCode, durationMs: outcome.durationMs };
      }),
      reportResult: fromPromise<Report | void, { execution: Execution; status: TerminalStatus; reason: string | null; results: StepResult[] }>(async ({ input }) => {
        const { jobId, executionNumber } = input.execution;
        const key = executionKey(jobId, executionNumber);
        const store = await openRecords();
        let record = store.get(key);
        const state = live.get(key);
        reporting.add(key);
        if (record?.state !== 'reporting') {
          const details = resultDetails({ status: input.status, reason: input.reason, steps: state?.outcomes ?? [], includeStdOut: state?.plan.includeStdOut ?? false });
          record = await store.put(key, { jobId, executionNumber, state: 'reporting', status: input.status, reason: input.reason, statusDetails: details, group: undefined });
        }
        await state?.progress; // the last progress update answered (or given up) before the result goes
        const endedBy = await sendResult(record).finally(() => reporting.delete(key));
        live.delete(key);
        stats.finished[endedBy ? 'CANCELED' : input.status]++;
        log.info({ jobId, executionNumber, status: input.status, reason: input.reason, endedBy }, 'job reported');
        return { endedBy: endedBy ?? null };
      }),
      recordCancel: fromPromise<void, { execution: Execution; reason: string | null; endedBy: string | null }>(async ({ input }) => {
        const { jobId, executionNumber } = input.execution;
        const key = executionKey(jobId, executionNumber);
        live.get(key)?.abort.abort();
        live.delete(key);
        const endedBy = input.endedBy ?? undefined;
        await (await openRecords()).put(key, { jobId, executionNumber, state: 'done', status: 'CANCELED', reason: input.reason, endedBy, group: undefined, finishedAt: Date.now() });
        stats.finished.CANCELED++;
        log.warn({ jobId, executionNumber, reason: input.reason, endedBy }, 'job canceled');
      }),
    },
  });

  return { api, stats, records: openRecords, actors: { jobsFeed, recover, resendPending, askNext, resendResult, checkCurrent, job } };
}
