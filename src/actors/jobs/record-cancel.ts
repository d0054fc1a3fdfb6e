import { fromPromise } from 'xstate';
import type { Execution } from '../../../machines/job.js';
import { executionKey } from '../../jobs/records.js';
import type { JobsPorts } from './ports.js';

/** The `recordCancel` actor: the service ended the execution; what ran was stopped on the way
 * here (the step's actor was stopped, its process group killed). The record says so. */
export function recordCancelActor(ports: Pick<JobsPorts, 'store' | 'stats' | 'clock' | 'log'>) {
  return fromPromise<void, { execution: Execution; reason: string | null; endedBy: string | null }>(async ({ input }) => {
    const { jobId, executionNumber } = input.execution;
    const endedBy = input.endedBy ?? undefined;
    const record = {
      jobId,
      executionNumber,
      state: 'done' as const,
      status: 'CANCELED' as const,
      reason: input.reason,
      endedBy,
      group: undefined,
      finishedAt: ports.clock.now(),
    };
    await (await ports.store.open()).put(executionKey(jobId, executionNumber), record);
    ports.stats.finished.CANCELED++;
    ports.log.warn({ jobId, executionNumber, reason: input.reason, endedBy }, 'job canceled');
  });
}
