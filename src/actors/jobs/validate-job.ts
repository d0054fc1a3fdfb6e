import { fromPromise } from 'xstate';
import type { Execution, PlannedStep, Validation } from '../../../machines/job.js';
import { parseJobDocument } from '../../jobs/document.js';
import { checkStep, toPlanned } from '../../jobs/run-step.js';
import type { JobsPorts } from './ports.js';

/**
 * The `validateJob` actor: the document parsed whole, then every step checked against the
 * allowlist and the user rules before the first one runs (a refused step means nothing
 * runs). Its output is the checked plan the chart hands to each runStep.
 */
export function validateJobActor(ports: Pick<JobsPorts, 'jobs' | 'stats'>) {
  const { jobs, stats } = ports;
  return fromPromise<Validation, { execution: Execution }>(async ({ input: { execution } }) => {
    const parsed = parseJobDocument(execution.jobDocument, { timeoutSeconds: jobs.defaultTimeoutSeconds });
    if (!parsed.ok) {
      stats.refusals++;
      return parsed;
    }
    const { plan } = parsed;
    const planned: PlannedStep[] = [];
    for (const step of [...plan.steps, ...(plan.finalStep ? [plan.finalStep] : [])]) {
      const check = await checkStep(step, jobs);
      if (!check.ok) {
        stats.refusals++;
        return { ok: false, reason: `step "${step.name}": ${check.reason}` };
      }
      planned.push(toPlanned(step, check));
    }
    const finalStep = plan.finalStep ? planned.pop() : undefined;
    return { ok: true, plan: { steps: planned, finalStep, includeStdOut: plan.includeStdOut } };
  });
}
