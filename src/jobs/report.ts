import type { TerminalStatus } from '../../machines/job.js';
import { statusDetails, type StatusDetails } from './status-details.js';
import type { StepOutcome } from './run-step.js';

/**
 * The statusDetails of a terminal update: a reason on every FAILED or REJECTED, then the
 * step that decided the outcome (the failed one, or the last), its exit code, the duration,
 * and the end of its output: stdout only when the document asked for it (includeStdOut).
 */
export function resultDetails(input: {
  status: TerminalStatus;
  reason: string | null;
  outcomes: StepOutcome[];
  includeStdOut: boolean;
}): StatusDetails {
  const deciding = input.outcomes.find((o) => !o.ok) ?? input.outcomes.at(-1);
  const total = input.outcomes.reduce((sum, o) => sum + o.durationMs, 0);
  return statusDetails([
    ['reason', input.status === 'SUCCEEDED' ? undefined : (input.reason ?? 'failed')],
    ['step', deciding?.name],
    ['exitCode', deciding?.exitCode ?? undefined],
    ['signal', deciding?.signal ?? undefined],
    ['durationMs', input.outcomes.length ? total : undefined],
    ['stepsRun', input.outcomes.length || undefined],
    ['stdout', input.includeStdOut ? deciding?.stdout : undefined, true],
    ['stderr', deciding?.stderr, true],
  ]);
}
