import { fromPromise } from 'xstate';
import { deliverResult } from '../../jobs/deliver-result.js';
import type { JobsPorts } from './ports.js';

/** The `resendResult` actor: an execution offered again that ran here already gets its stored result, never a second run. */
export function resendResultActor(ports: Pick<JobsPorts, 'store' | 'updates' | 'clock' | 'log'>) {
  const delivery = { updates: ports.updates, records: ports.store.open, clock: ports.clock, log: ports.log };
  return fromPromise<void, { key: string }>(async ({ input }) => {
    const record = (await ports.store.open()).get(input.key);
    if (record?.status) await deliverResult({ ...record, state: 'reporting' }, delivery);
    else ports.log.warn({ key: input.key }, 'offered again, but no result is stored; not run again');
  });
}
