import type { RecordedStep, StepResult, TerminalStatus } from '../../machines/job.js';
import { clean, lastChars, statusDetails, type StatusDetails } from './status-details.js';
import type { StepOutcome } from './run-step.js';

/** A step that ran (or was refused), with the document's policy for it: what the job chart records. */
export type ReportedStep = RecordedStep;

/**
 * A step's outcome as the job chart keeps it: the output streams cut to the tail a report can
 * carry (what statusDetails would keep of them), so no more than that travels through the chart.
 */
export function forReport(outcome: StepOutcome): StepResult {
  const { name, ok, reason, exitCode, signal, durationMs } = outcome;
  return { name, ok, reason, exitCode, signal, durationMs, stdout: lastChars(clean(outcome.stdout)), stderr: lastChars(clean(outcome.stderr)) };
}

/** Whether this step's failure decided the job (an ignored failure did not). */
const decisive = (s: ReportedStep) => !s.ok && (s.final || !s.ignoreStepFailure);

/**
 * The statusDetails of a terminal update: a reason on every FAILED or REJECTED, then the
 * step that decided the outcome (the first failure not ignored, else the last step run), its
 * exit code and stderr, the duration of all steps, and with includeStdOut one stdout tail
 * across all steps in order (what the AWS IoT Device Client reports).
 */
export function resultDetails(input: { status: TerminalStatus; reason: string | null; steps: ReportedStep[]; includeStdOut: boolean }): StatusDetails {
  const { steps } = input;
  const deciding = steps.find(decisive) ?? steps.at(-1);
  const total = steps.reduce((sum, s) => sum + s.durationMs, 0);
  // each step's stdout is already its own tail (at least the 1,024 characters kept here)
  const stdout = input.includeStdOut ? lastChars(steps.map((s) => s.stdout).join('')) : undefined;
  return statusDetails([
    ['reason', input.status === 'SUCCEEDED' ? undefined : (input.reason ?? 'failed')],
    ['step', deciding?.name],
    ['exitCode', deciding?.exitCode ?? undefined],
    ['signal', deciding?.signal ?? undefined],
    ['durationMs', steps.length ? total : undefined],
    ['stepsRun', steps.length || undefined],
    ['stdout', stdout, true],
    ['stderr', deciding?.stderr, true],
  ]);
}
