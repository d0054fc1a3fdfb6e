import { fromPromise } from 'xstate';
import type { ExecutionId } from '../../../machines/jobs.js';
import { JobsRejected } from '../../jobs/api.js';
import type { JobsPorts } from './ports.js';

const TERMINAL_AT_SERVICE = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REMOVED', 'CANCELED'];

/**
 * The `checkCurrent` actor: whether the service has ended the running execution (the head
 * moved): null while it is live there, else the status it ended it with.
 */
export function checkCurrentActor(ports: Pick<JobsPorts, 'api' | 'updates'>) {
  return fromPromise<string | null, ExecutionId>(async ({ input }) => {
    // Our own terminal update moved the head: nothing to ask, the report learns the rest.
    if (ports.updates.isFinishing(input)) return null;
    try {
      const status = String((await ports.api.describe(input.jobId, input.executionNumber))?.status);
      return TERMINAL_AT_SERVICE.includes(status) ? status : null;
    } catch (error) {
      if (error instanceof JobsRejected && error.code === 'ResourceNotFound') return 'REMOVED';
      if (error instanceof JobsRejected && error.code === 'TerminalStateReached') return error.executionState?.status ?? 'ended';
      throw error;
    }
  });
}
