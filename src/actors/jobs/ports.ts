import type { MqttClient } from 'mqtt';
import type { Config } from '../../config/schema.js';
import type { JobsApi } from '../../jobs/api.js';
import type { Launcher } from '../../jobs/launch.js';
import { JobRecords } from '../../jobs/records.js';
import type { JobStats } from '../../jobs/stats.js';
import type { StatusUpdates } from '../../jobs/status-updates.js';
import type { Logger } from '../../log.js';
import type { Slot } from '../../slot.js';

/** The job records (jobs-inflight.jsonl, jobs.json), opened on first use and kept for the process. */
export interface JobStore {
  open(): Promise<JobRecords>;
  /** writes finished records to jobs.json now, if the store was opened */
  flush(): Promise<void>;
}

/**
 * Everything the jobs actors reach beyond their input; each actor takes the part it uses.
 * Made once per process, so a restarted concern finds the same store and counters.
 */
export interface JobsPorts {
  /** the connected MQTT client, while there is one */
  session: Slot<MqttClient>;
  /** the AWS IoT Jobs request/answer API over that session */
  api: JobsApi;
  /** the status updates of the job in flight, in order */
  updates: StatusUpdates;
  store: JobStore;
  stats: JobStats;
  /** how job programs start; undefined when the concern is disabled */
  launcher: Launcher | undefined;
  jobs: Config['jobs'];
  clock: { now(): number };
  log: Logger;
}

export function jobStore(stateDir: string, log: Logger): JobStore {
  let opened: Promise<JobRecords> | undefined;
  const onError = (error: unknown) => log.warn({ err: String(error) }, 'cannot write the jobs history (tried again with the next)');
  return {
    open: () => (opened ??= JobRecords.open(stateDir, onError)),
    flush: async () => {
      if (opened) await (await opened).flush();
    },
  };
}
