import { fromCallback } from 'xstate';
import type { Execution, ProgressEvent } from '../../../machines/job.js';
import type { JobsPorts } from './ports.js';

/**
 * The `reportProgress` actor, for the life of one job: as the chart says a later step starts,
 * tells the service IN_PROGRESS naming it. Not awaited, so the step starts at once; the
 * terminal update waits for the last answer (StatusUpdates), so none overtakes it.
 */
export function reportProgressActor(ports: Pick<JobsPorts, 'updates' | 'log'>) {
  return fromCallback<ProgressEvent, { execution: Execution }>(({ input: { execution }, receive }) => {
    receive((event) =>
      ports.updates.progressed(execution, event.index, event.count, event.step, (error) =>
        ports.log.info({ jobId: execution.jobId, step: event.step, err: String(error) }, 'progress update not taken'),
      ),
    );
  });
}
