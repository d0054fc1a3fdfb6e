import { fromPromise } from 'xstate';
import type { Execution } from '../../../machines/job.js';
import type { JobsPorts } from './ports.js';

/** The `askNext` actor: $next/get, the execution the service has next for this thing, or null. */
export function askNextActor(ports: Pick<JobsPorts, 'api'>) {
  return fromPromise<Execution | null, void>(async () => {
    const next = await ports.api.nextGet();
    if (!next) return null;
    return { jobId: next.jobId, executionNumber: next.executionNumber, versionNumber: next.versionNumber, jobDocument: next.jobDocument };
  });
}
