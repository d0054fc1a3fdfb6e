import type { Logger } from '../log.js';
import { JobsRejected } from './api.js';
import type { JobRecord, JobRecords } from './records.js';
import type { StatusUpdates } from './status-updates.js';

export interface DeliveryPorts {
  updates: StatusUpdates;
  records: () => Promise<JobRecords>;
  clock: { now(): number };
  log: Logger;
}

/** Rejections that say the service ended the execution before our result: nothing to retry. */
const ENDED_FIRST = ['InvalidStateTransition', 'ResourceNotFound'];
/** Rejections worth another try later. */
const TRANSIENT = ['RequestThrottled', 'InternalError'];

/**
 * Sends a stored result; a rejection that shows the service already has it, or has ended the
 * execution, settles it too. Returns the status the service ended it with first (TIMED_OUT,
 * CANCELED…), if it did: the result was not taken; the record keeps it, marked `endedBy`.
 * Offline or no answer: throws, and the record stays `reporting` to be sent again.
 */
export async function deliverResult(record: JobRecord, ports: DeliveryPorts): Promise<string | undefined> {
  const { log } = ports;
  const status = record.status === 'CANCELED' ? undefined : record.status;
  let endedBy: string | undefined;
  if (status) {
    try {
      await ports.updates.finish(record, { status, statusDetails: record.statusDetails });
    } catch (error) {
      if (!(error instanceof JobsRejected)) throw error; // offline, no answer: try again later
      const now = error.executionState?.status;
      if (error.code === 'InvalidStateTransition' && now === status) log.info({ jobId: record.jobId }, 'result had arrived already');
      else if (ENDED_FIRST.includes(error.code)) {
        // not an error of ours and nothing to retry: the service's timer or an operator was first
        endedBy = now ?? (error.code === 'ResourceNotFound' ? 'REMOVED' : 'ended');
        log.warn({ jobId: record.jobId, code: error.code, now }, 'the service ended this execution first; result dropped');
      } else if (TRANSIENT.includes(error.code)) throw error;
      else log.error({ jobId: record.jobId, code: error.code, err: error.message }, 'result refused by the service');
    }
  }
  // Reaches the history file a moment later: were it lost meanwhile, the result would only
  // be sent once more, and "already <status>" counts as delivered.
  const store = await ports.records();
  const done = {
    jobId: record.jobId,
    executionNumber: record.executionNumber,
    state: 'done' as const,
    finishedAt: ports.clock.now(),
    ...(endedBy ? { endedBy } : {}),
  };
  void store.put(record.key, done).catch((error) => log.warn({ jobId: record.jobId, err: String(error) }, 'cannot write the job record'));
  return endedBy;
}
