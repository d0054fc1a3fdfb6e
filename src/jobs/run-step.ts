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

/**
 * One step of a job (the `runStep` actor's work): check it (unless the job's validation
 * already did, and runs the real path it found), run it, and judge it. A step fails on a
 * non-zero exit, a signal, a timeout, or more stderr lines than `allowStdErr` allows;
 * stderr never hides a bad exit.
 */
export async function runStep(step: StepPlan, context: StepContext, checked?: CheckedStep): Promise<StepOutcome> {
  const blank = { name: step.name, exitCode: null, signal: null, timedOut: false, canceled: false, stdout: '', stderr: '', durationMs: 0 };
  const check = checked ?? (await checkStep(step, context));
  if (!check.ok) return { ...blank, ok: false, refused: true, reason: check.reason };
  const runAs = check.runAs;

  // The AWS IoT Device Client passes runAsUser (or "") as a handler's first argument;
  // handlers written for it expect that.
  const args = step.type === 'runHandler' ? [step.runAsUser ?? '', ...step.args] : step.args;
  const result = await runProcess({
    path: check.path,
    args,
    timeoutMs: step.timeoutSeconds * 1000,
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
    ...blank,
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
    ? `cannot start ${check.path}: ${result.spawnError}`
    : result.aborted
      ? 'canceled'
      : result.timedOut
        ? `timed out after ${step.timeoutSeconds} s`
        : result.signal
          ? `killed by signal ${result.signal}`
          : result.exitCode !== 0
            ? `exited with code ${result.exitCode}`
            : result.stderrLines > step.allowStdErr
              ? `wrote ${result.stderrLines} lines to stderr; allowStdErr is ${step.allowStdErr}`
              : undefined;
  return { ...outcome, ok: reason === undefined, reason };
}
