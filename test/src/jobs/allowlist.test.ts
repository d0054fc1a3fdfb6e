import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveStep } from '../../../src/jobs/allowlist.js';
import type { StepPlan } from '../../../src/jobs/document.js';

const root = mkdtempSync(join(tmpdir(), 'edgevisor-allow-'));
const jobs = join(root, 'jobs');
const jobsEvil = join(root, 'jobs-evil');
const handlers = join(root, 'handlers');
for (const dir of [jobs, jobsEvil, handlers, join(jobs, 'sub')]) mkdirSync(dir, { recursive: true });
const script = (path: string, mode = 0o755) => {
  writeFileSync(path, '#!/bin/sh\necho hi\n');
  chmodSync(path, mode);
  return path;
};
script(join(jobs, 'ok.sh'));
script(join(jobs, 'sub', 'deep.sh'));
script(join(jobsEvil, 'evil.sh'));
script(join(jobs, 'not-exec.sh'), 0o644);
script(join(handlers, 'handler.sh'));
symlinkSync(join(jobsEvil, 'evil.sh'), join(jobs, 'link-out.sh'));
symlinkSync('/bin/sh', join(jobs, 'shell-link'));

const allowlist = ['/bin/echo', `${jobs}/`];
const command = (cmd: string): StepPlan => ({
  name: 's',
  type: 'runCommand',
  command: cmd,
  args: [],
  timeoutSeconds: 5,
  ignoreStepFailure: false,
  allowStdErr: 0,
});
const handler = (name: string, dir?: string): StepPlan => ({ ...command(name), type: 'runHandler', handlerDir: dir });
const resolve = (step: StepPlan) => resolveStep(step, allowlist, handlers);

describe('allowlist', () => {
  it('allows an exact entry, resolved on both sides (/bin/echo is /usr/bin/echo on merged /usr)', async () => {
    const result = await resolve(command('/bin/echo'));
    expect(result.ok).toBe(true);
    const viaUsr = await resolve(command('/usr/bin/echo'));
    expect(viaUsr.ok).toBe(true);
  });

  it('allows files inside a directory entry, at any depth', async () => {
    expect(await resolve(command(join(jobs, 'ok.sh')))).toEqual({ ok: true, path: join(jobs, 'ok.sh') });
    expect((await resolve(command(join(jobs, 'sub', 'deep.sh')))).ok).toBe(true);
  });

  it.each([
    ['a sibling directory sharing the prefix (no "/" boundary)', () => join(jobsEvil, 'evil.sh'), 'is not in jobs.allowlist'],
    ['a symlink that leads out of the directory', () => join(jobs, 'link-out.sh'), `(really ${join(jobsEvil, 'evil.sh')}) is not in jobs.allowlist`],
    ['a symlink to a shell', () => join(jobs, 'shell-link'), 'is not in jobs.allowlist'],
    ['".." in the path', () => `${jobs}/../jobs-evil/evil.sh`, 'contains ".."'],
    ['percent-encoded traversal', () => `${jobs}/%2e%2e/jobs-evil/evil.sh`, 'percent-encoded'],
    ['a bare name', () => 'echo', 'is not an absolute path'],
    ['a relative path', () => 'jobs/ok.sh', 'is not an absolute path'],
    ['a look-alike Unicode path', () => join(root, 'jоbs', 'ok.sh'), 'printable ASCII'],
    ['a control character', () => `${jobs}/ok.sh\n`, 'printable ASCII'],
    ['a missing file', () => join(jobs, 'missing.sh'), 'ENOENT'],
    ['a file without the executable bit', () => join(jobs, 'not-exec.sh'), 'is not executable'],
    ['a directory', () => join(jobs, 'sub'), 'is not a regular file'],
    ['a program outside the allowlist', () => '/bin/sh', 'is not in jobs.allowlist'],
  ])('refuses %s', async (_what, path, reason) => {
    const result = await resolve(command(path()));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toMatch(/^refused: /);
      expect(result.reason).toContain(reason);
    }
  });

  it('runs handlers from the handler directory; another directory must be allowlisted', async () => {
    expect(await resolve(handler('handler.sh'))).toEqual({ ok: true, path: join(handlers, 'handler.sh') });
    expect((await resolve(handler('ok.sh', jobs))).ok).toBe(true);
    const outside = await resolve(handler('evil.sh', jobsEvil));
    expect(outside.ok).toBe(false);
    const noDir = await resolveStep(handler('handler.sh'), allowlist, undefined);
    expect(noDir).toEqual({ ok: false, reason: 'refused: runHandler needs jobs.handlerDir or an input.path' });
  });
});
