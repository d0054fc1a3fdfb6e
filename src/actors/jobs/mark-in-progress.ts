import { fromPromise } from 'xstate';
import type { Execution } from '../../../machines/job.js';
import type { JobsPorts } from './ports.js';

/** The `markInProgress` actor: IN_PROGRESS before the first step, so the service's timers are armed. */
export function markInProgressActor(ports: Pick<JobsPorts, 'updates'>) {
  return fromPromise<void, { execution: Execution; step: string; count: number }>(({ input }) => ports.updates.start(input.execution, input.step, input.count));
}
