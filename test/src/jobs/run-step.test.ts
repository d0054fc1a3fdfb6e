import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StepPlan } from '../../../src/jobs/document.js';
import { runStep } from '../../../src/jobs/run-step.js';

const root = mkdtempSync(join(tmpdir(), 'edgevisor-step-'));
const jobsDir = join(root, 'jobs');
const handlers = join(root, 'handlers');
const outside = join(root, 'outside');
for (const d of [jobsDir, handlers, outside]) mkdirSync(d);
const script = (path: string, body: string) => {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
};
const marker = (name: string) => join(root, `${name}.marker`);
script(join(outside, 'touch.sh'), `touch "$1"`);
script(join(jobsDir, 'touch.sh'), `touch "$1"`);
script(join(jobsDir, 'stderr.sh'), 'i=0; while [ $i -lt "$1" ]; do echo "warning $i" >&2; i=$((i+1)); done; exit "${2:-0}"');
script(join(handlers, 'argv.sh'), 'printf "[%s]" "$@"');
script(join(jobsDir, 'whoami.sh'), 'id -u');
chmodSync(root, 0o755);

const context = { jobId: 'job-1', allowlist: ['/bin/echo', `${jobsDir}/`], handlerDir: handlers, graceMs: 200 };
const step = (over: Partial<StepPlan>): StepPlan => ({
  name: 'step',
  type: 'runCommand',
  command: '/bin/echo',
  args: [],
  timeoutSeconds: 10,
  ignoreStepFailure: false,
  allowStdErr: 0,
  ...over,
});

describe('runStep', () => {
  it('runs an allowlisted command and reports its output', async () => {
    const outcome = await runStep(step({ args: ['hello'] }), context);
    expect(outcome).toMatchObject({ ok: true, refused: false, exitCode: 0, stdout: 'hello\n' });
  });

  it('refuses a command outside the allowlist, and it never runs (no marker file)', async () => {
    const outcome = await runStep(step({ command: join(outside, 'touch.sh'), args: [marker('outside')] }), context);
    expect(outcome.ok).toBe(false);
    expect(outcome.refused).toBe(true);
    expect(outcome.reason).toContain('is not in jobs.allowlist');
    expect(existsSync(marker('outside'))).toBe(false);
    // the same script inside the allowlist does run
    expect((await runStep(step({ command: join(jobsDir, 'touch.sh'), args: [marker('inside')] }), context)).ok).toBe(true);
    expect(existsSync(marker('inside'))).toBe(true);
  });

  it('allowStdErr: lines up to the limit pass, more fail, and a non-zero exit always fails', async () => {
    const cmd = join(jobsDir, 'stderr.sh');
    expect((await runStep(step({ command: cmd, args: ['2'], allowStdErr: 2 }), context)).ok).toBe(true);
    const tooMany = await runStep(step({ command: cmd, args: ['3'], allowStdErr: 2 }), context);
    expect(tooMany).toMatchObject({ ok: false, reason: 'wrote 3 lines to stderr; allowStdErr is 2' });
    const badExit = await runStep(step({ command: cmd, args: ['0', '4'], allowStdErr: 10 }), context);
    expect(badExit).toMatchObject({ ok: false, exitCode: 4, reason: 'exited with code 4' });
  });

  it('a timeout fails the step with the reason', async () => {
    const cmd = script(join(jobsDir, 'slow.sh'), 'sleep 30');
    const outcome = await runStep(step({ command: cmd, timeoutSeconds: 1 }), context);
    expect(outcome).toMatchObject({ ok: false, timedOut: true, reason: 'timed out after 1 s' });
  });

  it('passes runAsUser (or "") as a handler\'s first argument, as the Device Client does', async () => {
    const outcome = await runStep(step({ type: 'runHandler', command: 'argv.sh', args: ['a b', 'c'] }), context);
    expect(outcome.stdout).toBe('[][a b][c]');
  });

  it('runs as another user when asked (the agent runs as root here), and refuses an unknown user', async () => {
    const nobody = execFileSync('id', ['-u', 'nobody']).toString().trim();
    const outcome = await runStep(step({ command: join(jobsDir, 'whoami.sh'), runAsUser: 'nobody' }), context);
    if (process.getuid?.() === 0) expect(outcome).toMatchObject({ ok: true, stdout: `${nobody}\n` });
    else expect(outcome.reason).toContain('needs the agent to run as root');
    const unknown = await runStep(step({ command: join(jobsDir, 'whoami.sh'), runAsUser: 'no-such-user-x' }), context);
    expect(unknown).toMatchObject({ ok: false, refused: true, reason: 'refused: runAsUser "no-such-user-x" is not a user on this machine' });
  });
});
