import { fromPromise } from 'xstate';
import type { RunStepInput, StepResult } from '../../../machines/job.js';
import { identify } from '../../jobs/process-group.js';
import { executionKey } from '../../jobs/records.js';
import { forReport } from '../../jobs/report.js';
import { runPlanned } from '../../jobs/run-step.js';
import type { JobsPorts } from './ports.js';

/**
 * The `runStep` actor: one checked step, in its own process group, recorded in the job's
 * record while it runs (a crash then kills what is left). Stopping the actor (a cancel, the
 * concern stopping) aborts its signal, which kills the group.
 */
export function runStepActor(ports: Pick<JobsPorts, 'store' | 'launcher' | 'jobs' | 'stats' | 'log'>) {
  const { jobs, stats, log } = ports;
  return fromPromise<StepResult, RunStepInput>(async ({ input, signal }) => {
    const { step } = input;
    const { jobId, executionNumber } = input.execution;
    const store = await ports.store.open();
    const onSpawn = (pgid: number) =>
      void store
        .put(executionKey(jobId, executionNumber), { jobId, executionNumber, group: identify(pgid) })
        .catch((error) => log.error({ jobId, pgid, err: String(error) }, 'cannot record the process group'));
    const outcome = await runPlanned(step, { jobId, allowlist: jobs.allowlist, handlerDir: jobs.handlerDir, launcher: ports.launcher, signal, onSpawn });
    stats.stepSeconds += outcome.durationMs / 1000;
    if (outcome.timedOut) stats.stepTimeouts++;
    log.info({ jobId, step: step.name, ok: outcome.ok, exitCode: outcome.exitCode, ms: outcome.durationMs, reason: outcome.reason }, 'step finished');
    return forReport(outcome);
  });
}
