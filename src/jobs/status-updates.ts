import type { ExecutionId } from '../../machines/jobs.js';
import { JobsRejected, type JobsApi } from './api.js';
import { statusDetails, type StatusDetails } from './status-details.js';

/** What the service shows while a step runs: the complete map every time (replace or merge, spec §10). */
export const progressDetails = (index: number, count: number, name: string) =>
  statusDetails([
    ['step', name],
    ['stepIndex', index + 1],
    ['stepCount', count || undefined],
  ]);

const sameExecution = (a: ExecutionId, b: ExecutionId) => a.jobId === b.jobId && a.executionNumber === b.executionNumber;

/**
 * The status updates of the job in flight, in the order the service must see them. It owns
 * what would otherwise pass between actors: the progress update still on its way (the terminal
 * update waits for its answer, so none overtakes it: one connection keeps the requests in
 * order, not the service's answers), and which execution's terminal update is on its way
 * (the head change it causes is ours, nothing to ask about). One job runs at a time.
 */
export class StatusUpdates {
  private progress: Promise<unknown> | undefined;
  private finishing: ExecutionId | undefined;

  constructor(private readonly api: JobsApi) {}

  /** IN_PROGRESS before the first step: a refusal (canceled meanwhile) is final; no answer is asked again a few times. */
  async start(execution: ExecutionId, step: string, count: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.update(execution.jobId, {
          status: 'IN_PROGRESS',
          executionNumber: execution.executionNumber,
          statusDetails: progressDetails(0, count, step),
        });
        return;
      } catch (error) {
        if (error instanceof JobsRejected || attempt === 3) throw error;
      }
    }
  }

  /** The progress of a later step: not awaited, so the step starts at once. No expectedVersion:
   * nothing to mismatch (spec pitfall 10). `onRefused` hears of an update not taken. */
  progressed(execution: ExecutionId, index: number, count: number, step: string, onRefused: (error: unknown) => void): void {
    this.progress = this.api
      .update(execution.jobId, { status: 'IN_PROGRESS', executionNumber: execution.executionNumber, statusDetails: progressDetails(index, count, step) })
      .catch(onRefused);
  }

  /** The terminal update, once the last progress update has its answer (or was given up). */
  async finish(execution: ExecutionId, body: { status: string; statusDetails?: StatusDetails }): Promise<void> {
    await this.progress;
    this.progress = undefined;
    this.finishing = execution;
    try {
      await this.api.update(execution.jobId, { ...body, executionNumber: execution.executionNumber });
    } finally {
      this.finishing = undefined;
    }
  }

  /** Whether this execution's terminal update is on its way. */
  isFinishing(execution: ExecutionId): boolean {
    return this.finishing !== undefined && sameExecution(this.finishing, execution);
  }
}
