import { fromPromise } from 'xstate';
import type { Execution } from '../../../machines/job.js';
import { executionKey } from '../../jobs/records.js';
import type { JobsPorts } from './ports.js';

/** The `recordReceived` actor: the execution is written down as running before anything is
 * looked at, so after a crash it is known, never run again, and reported FAILED. */
export function recordReceivedActor(ports: Pick<JobsPorts, 'store' | 'log'>) {
  return fromPromise<void, { execution: Execution }>(async ({ input: { execution } }) => {
    const { jobId, executionNumber } = execution;
    await (await ports.store.open()).put(executionKey(jobId, executionNumber), { jobId, executionNumber, state: 'running' });
    ports.log.info({ jobId, executionNumber }, 'job received');
  });
}
