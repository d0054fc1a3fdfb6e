import { fromPromise } from 'xstate';
import type { Report, ReportInput } from '../../../machines/job.js';
import { deliverResult } from '../../jobs/deliver-result.js';
import { executionKey } from '../../jobs/records.js';
import { resultDetails } from '../../jobs/report.js';
import type { JobsPorts } from './ports.js';

/**
 * The `reportResult` actor: the terminal update. The result is stored first (state
 * `reporting`), so an outage or a restart sends that same result again; then it goes to the
 * service, which may say it ended the execution first (`endedBy`).
 */
export function reportResultActor(ports: Pick<JobsPorts, 'store' | 'updates' | 'stats' | 'clock' | 'log'>) {
  const delivery = { updates: ports.updates, records: ports.store.open, clock: ports.clock, log: ports.log };
  return fromPromise<Report, ReportInput>(async ({ input }) => {
    const { jobId, executionNumber } = input.execution;
    const key = executionKey(jobId, executionNumber);
    const store = await ports.store.open();
    let record = store.get(key);
    // a retry keeps the result stored by the first attempt
    if (record?.state !== 'reporting') {
      const details = resultDetails({ status: input.status, reason: input.reason, steps: input.results, includeStdOut: input.includeStdOut });
      record = await store.put(key, {
        jobId,
        executionNumber,
        state: 'reporting',
        status: input.status,
        reason: input.reason,
        statusDetails: details,
        group: undefined,
      });
    }
    const endedBy = await deliverResult(record, delivery);
    ports.stats.finished[endedBy ? 'CANCELED' : input.status]++;
    ports.log.info({ jobId, executionNumber, status: input.status, reason: input.reason, endedBy }, 'job reported');
    return { endedBy: endedBy ?? null };
  });
}
