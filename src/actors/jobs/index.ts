import type { MqttClient } from 'mqtt';
import { jobMachine } from '../../../machines/job.js';
import { jobsMachine } from '../../../machines/jobs.js';
import type { Config } from '../../config/schema.js';
import { JobsApi } from '../../jobs/api.js';
import { launcherFor } from '../../jobs/launch.js';
import { JobStats } from '../../jobs/stats.js';
import { StatusUpdates } from '../../jobs/status-updates.js';
import type { Logger } from '../../log.js';
import type { Slot } from '../../slot.js';
import { askNextActor } from './ask-next.js';
import { checkCurrentActor } from './check-current.js';
import { jobsFeedActor } from './jobs-feed.js';
import { markInProgressActor } from './mark-in-progress.js';
import { jobStore, type JobsPorts } from './ports.js';
import { recordCancelActor } from './record-cancel.js';
import { recordReceivedActor } from './record-received.js';
import { recoverActor } from './recover.js';
import { reportProgressActor } from './report-progress.js';
import { reportResultActor } from './report-result.js';
import { resendPendingActor } from './resend-pending.js';
import { resendResultActor } from './resend-result.js';
import { runStepActor } from './run-step.js';
import { validateJobActor } from './validate-job.js';

export interface JobsDeps {
  config: Config;
  session: Slot<MqttClient>;
  log: Logger;
  clock?: { now(): number };
}

/** The ports of the jobs actors, made once per process. */
export function jobsPorts(deps: JobsDeps): JobsPorts {
  const { config, log } = deps;
  const api = new JobsApi(config.thingName, config.jobs.answerTimeoutSeconds * 1000);
  const stats = new JobStats();
  stats.launcher = config.jobs.launcher;
  // main.ts has checked that a configured posix_spawn loads; a disabled concern loads nothing
  const launcher = config.jobs.enabled ? launcherFor(config.jobs.launcher) : undefined;
  if (config.jobs.enabled) log.info({ launcher: config.jobs.launcher }, `job programs start with ${config.jobs.launcher}`);
  return {
    session: deps.session,
    api,
    updates: new StatusUpdates(api),
    store: jobStore(config.stateDir, log),
    stats,
    launcher,
    jobs: config.jobs,
    clock: deps.clock ?? Date,
    log,
  };
}

/** The job chart with its real actors. */
export function jobWith(ports: JobsPorts) {
  return jobMachine.provide({
    actors: {
      recordReceived: recordReceivedActor(ports),
      validateJob: validateJobActor(ports),
      markInProgress: markInProgressActor(ports),
      runStep: runStepActor(ports),
      reportResult: reportResultActor(ports),
      recordCancel: recordCancelActor(ports),
      reportProgress: reportProgressActor(ports),
    },
  });
}

/** The jobs chart with its real actors and its job child, and what /metrics and the API read beside it. */
export function jobsActors(deps: JobsDeps) {
  const ports = jobsPorts(deps);
  const machine = jobsMachine.provide({
    actors: {
      jobsFeed: jobsFeedActor(ports),
      recover: recoverActor(ports),
      resendPending: resendPendingActor(ports),
      askNext: askNextActor(ports),
      resendResult: resendResultActor(ports),
      checkCurrent: checkCurrentActor(ports),
      job: jobWith(ports),
    },
  });
  return { machine, stats: ports.stats, records: ports.store.open };
}
