/** Job figures for /metrics, counted where the work happens (the data plane). */
export class JobStats {
  /** executions finished, by the status they ended with */
  readonly finished: Record<string, number> = { SUCCEEDED: 0, FAILED: 0, REJECTED: 0, CANCELED: 0 };
  /** seconds spent running steps, over all jobs */
  stepSeconds = 0;
  stepTimeouts = 0;
  /** steps refused before anything ran (allowlist, user) and documents refused as invalid */
  refusals = 0;
  /** how job programs start (config jobs.launcher) */
  launcher = 'child_process';
}
