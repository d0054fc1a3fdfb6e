import type { PlannedStep } from '../../machines/job.js';
import type { StepPlan } from './document.js';
import { resolveStep } from './allowlist.js';
import { runProcess } from './run-process.js';
import type { Launcher } from './launch.js';
import { identityFor, type RunAs } from './users.js';

export interface StepContext {
  jobId: string;
  allowlist: string[];
  handlerDir?: string;
  signal?: AbortSignal;
  onSpawn?: (pgid: number) => void;
  graceMs?: number;
  outputCapBytes?: number;
  /** how the program starts (config jobs.launcher); child_process when absent */
  launcher?: Launcher;
}

export interface StepOutcome {
  name: string;
  ok: boolean;
  /** refused before anything ran (allowlist, user) */
  refused: boolean;
  reason?: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  canceled: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A step that passed the allowlist and identity rules: the real program and who runs it. */
export type CheckedStep = { ok: true; path: string; runAs?: RunAs } | { ok: false; reason: string };

/** The allowlist and identity rules for one step, before anything runs. */
export async function checkStep(step: StepPlan, context: Pick<StepContext, 'allowlist' | 'handlerDir'>): Promise<CheckedStep> {
  const resolved = await resolveStep(step, context.allowlist, context.handlerDir);
  if (!resolved.ok) return resolved;
  const identity = await identityFor(step.runAsUser);
  return identity.ok ? { ok: true, path: resolved.path, runAs: identity.runAs } : identity;
}

/** A checked step as the job chart carries it: the program with its final arguments. The
 * AWS IoT Device Client passes runAsUser (or "") as a handler's first argument; handlers
 * written for it expect that. */
export function toPlanned(step: StepPlan, check: { path: string; runAs?: RunAs }): PlannedStep {
  const args = step.type === 'runHandler' ? [step.runAsUser ?? '', ...step.args] : step.args;
  return {
    name: step.name,
    ignoreStepFailure: step.ignoreStepFailure,
    program: { path: check.path, args, timeoutSeconds: step.timeoutSeconds, allowStdErr: step.allowStdErr, ...(check.runAs ? { runAs: check.runAs } : {}) },
  };
}

/**
 * One step of a job: check it (unless the job's validation already did, and runs the real
 * path it found), run it, and judge it.
 */
export async function runStep(step: StepPlan, context: StepContext, checked?: CheckedStep): Promise<StepOutcome> {
  const check = checked ?? (await checkStep(step, context));
  if (!check.ok) return { ...blank(step.name), ok: false, refused: true, reason: check.reason };
  return runPlanned(toPlanned(step, check), context);
}

/**
 * A checked step (the `runStep` actor's work): run it and judge it. A step fails on a
 * non-zero exit, a signal, a timeout, or more stderr lines than `allowStdErr` allows;
 * stderr never hides a bad exit. An aborted `signal` kills its process group.
 */
export async function runPlanned(step: PlannedStep, context: StepContext): Promise<StepOutcome> {
  const { program } = step;
  const runAs = program.runAs;
  const result = await runProcess({
    path: program.path,
    args: program.args,
    timeoutMs: program.timeoutSeconds * 1000,
    graceMs: context.graceMs,
    env: { PATH: SAFE_PATH, LANG: 'C.UTF-8', HOME: runAs?.home ?? '/', EDGEVISOR_JOB_ID: context.jobId },
    cwd: runAs?.home ?? '/',
    uid: runAs?.uid,
    gid: runAs?.gid,
    outputCapBytes: context.outputCapBytes,
    launcher: context.launcher,
    signal: context.signal,
    onSpawn: context.onSpawn,
  });
  const outcome = {
    ...blank(step.name),
    refused: false,
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    canceled: result.aborted,
    stdout: result.stdout,
    stderr: result.stderr,
    durationMs: result.durationMs,
  };
  const reason = result.spawnError
    ? `cannot start ${program.path}: ${result.spawnError}`
    : result.aborted
      ? 'canceled'
      : result.timedOut
        ? `timed out after ${program.timeoutSeconds} s`
        : result.signal
          ? `killed by signal ${result.signal}`
          : result.exitCode !== 0
            ? `exited with code ${result.exitCode}`
            : result.stderrLines > program.allowStdErr
              ? `wrote ${result.stderrLines} lines to stderr; allowStdErr is ${program.allowStdErr}`
              : undefined;
  return { ...outcome, ok: reason === undefined, reason };
}

const blank = (name: string) => ({ name, exitCode: null, signal: null, timedOut: false, canceled: false, stdout: '', stderr: '', durationMs: 0 });
