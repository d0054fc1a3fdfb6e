import { fromPromise } from 'xstate';
import { killRecordedGroup } from '../../jobs/process-group.js';
import { statusDetails } from '../../jobs/status-details.js';
import type { JobsPorts } from './ports.js';

const INTERRUPTED = 'interrupted: the agent stopped while the job ran; it is not run again';

/**
 * The `recover` actor, first thing after the concern (re)starts: what the stored records say
 * was running when the agent stopped is killed (its recorded process group, if still the
 * same one) and marked FAILED for reporting. Its output, the executions the records know,
 * is what keeps any of them from running twice.
 */
export function recoverActor(ports: Pick<JobsPorts, 'store' | 'log'>) {
  return fromPromise<{ recent: string[] }, void>(async () => {
    const store = await ports.store.open();
    for (const record of store.all().filter((r) => r.state === 'running')) {
      if (record.group) {
        const killed = killRecordedGroup(record.group);
        if (killed > 0) ports.log.warn({ jobId: record.jobId, pgid: record.group.pgid, killed }, 'killed what the interrupted job left running');
      }
      await store.put(record.key, {
        ...record,
        state: 'reporting',
        status: 'FAILED',
        reason: INTERRUPTED,
        statusDetails: statusDetails([['reason', INTERRUPTED]]),
      });
    }
    return { recent: store.all().map((r) => r.key) };
  });
}
