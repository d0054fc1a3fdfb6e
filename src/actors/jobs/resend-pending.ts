import { fromPromise } from 'xstate';
import { deliverResult } from '../../jobs/deliver-result.js';
import type { JobsPorts } from './ports.js';

/** The `resendPending` actor: every stored result not yet acknowledged (a restart, an outage) is sent again. */
export function resendPendingActor(ports: Pick<JobsPorts, 'store' | 'updates' | 'clock' | 'log'>) {
  const delivery = { updates: ports.updates, records: ports.store.open, clock: ports.clock, log: ports.log };
  return fromPromise<void, void>(async () => {
    const store = await ports.store.open();
    for (const record of store.all().filter((r) => r.state === 'reporting')) await deliverResult(record, delivery);
  });
}
