import { describe, expect, it } from 'vitest';
import { resultDetails, type ReportedStep } from '../../../src/jobs/report.js';
import { checkStatusDetails } from '../../../src/jobs/status-details.js';

const step = (name: string, over: Partial<ReportedStep> = {}): ReportedStep => ({
  name,
  ok: true,
  exitCode: 0,
  signal: null,
  stdout: `${name} out\n`,
  stderr: '',
  durationMs: 10,
  ignoreStepFailure: false,
  final: false,
  ...over,
});
const failedIgnored = step('probe', { ok: false, exitCode: 3, reason: 'exited with code 3', stderr: 'probe failed\n', ignoreStepFailure: true });

describe('the terminal statusDetails of a job', () => {
  it('a failure ignored by ignoreStepFailure does not decide a job that then succeeds', () => {
    const details = resultDetails({ status: 'SUCCEEDED', reason: null, steps: [failedIgnored, step('install')], includeStdOut: false });
    expect(details).toMatchObject({ step: 'install', exitCode: '0', stepsRun: '2', durationMs: '20' });
    expect(details.stderr).toBeUndefined();
  });

  it('a real failure after an ignored one is reported with its own step, exit code and stderr', () => {
    const broken = step('install', { ok: false, exitCode: 7, reason: 'exited with code 7', stderr: 'disk full\n' });
    const details = resultDetails({
      status: 'FAILED',
      reason: 'step "install" failed: exited with code 7',
      steps: [failedIgnored, broken, step('cleanup', { final: true })],
      includeStdOut: false,
    });
    expect(details).toMatchObject({ reason: 'step "install" failed: exited with code 7', step: 'install', exitCode: '7', stderr: 'disk full\n' });
  });

  it('a failing final step decides a job whose steps succeeded, even with ignoreStepFailure on it', () => {
    const final = step('cleanup', { ok: false, exitCode: 2, reason: 'exited with code 2', final: true, ignoreStepFailure: true });
    const details = resultDetails({
      status: 'FAILED',
      reason: 'final step "cleanup" failed: exited with code 2',
      steps: [step('a'), final],
      includeStdOut: false,
    });
    expect(details).toMatchObject({ step: 'cleanup', exitCode: '2' });
  });

  it('includeStdOut: one stdout tail across all steps, in order, as the Device Client keeps it', () => {
    const details = resultDetails({
      status: 'SUCCEEDED',
      reason: null,
      steps: [step('a'), failedIgnored, step('b'), step('c', { final: true })],
      includeStdOut: true,
    });
    expect(details.stdout).toBe('a out\nprobe out\nb out\nc out\n');
    expect(details.step).toBe('c');
  });

  it('the shared stdout tail keeps the end of the last steps within 1,024 characters', () => {
    const long = 'x'.repeat(2000);
    const details = resultDetails({
      status: 'SUCCEEDED',
      reason: null,
      steps: [step('a', { stdout: long }), step('b', { stdout: 'end\n' })],
      includeStdOut: true,
    });
    expect(details.stdout.length).toBe(1024);
    expect(details.stdout.endsWith('xend\n')).toBe(true);
    expect(checkStatusDetails(details)).toBeUndefined();
  });

  it('no stdout without includeStdOut; a job refused before any step has only its reason', () => {
    expect(resultDetails({ status: 'SUCCEEDED', reason: null, steps: [step('a')], includeStdOut: false }).stdout).toBeUndefined();
    expect(resultDetails({ status: 'REJECTED', reason: 'invalid job document: x', steps: [], includeStdOut: true })).toEqual({
      reason: 'invalid job document: x',
    });
  });
});
