import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launcherFor, launchWithNode, launchWithPosixSpawn, posixSpawnAvailable, type Launcher } from '../../../src/jobs/launch.js';
import { runProcess, type RunOptions } from '../../../src/jobs/run-process.js';
import { groupMembers } from '../../support/processes.js';

const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };

/** Whether anything of the group is still running a moment later (signals land asynchronously). */
async function groupAlive(pgid: number): Promise<boolean> {
  for (let i = 0; i < 20 && groupMembers(pgid).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
  return groupMembers(pgid).length > 0;
}

// posix_spawn is opt-in: its addon is built by npm run build:native, which needs a C compiler.
// Where it is not built its parity tests are skipped, saying why; CI builds it and requires it.
const native = posixSpawnAvailable();
const required = process.env.EDGEVISOR_REQUIRE_NATIVE === '1';
if (!native && !required) console.warn('posix_spawn parity tests skipped: dist/native/spawn.node is not built (npm run build:native)');

it.runIf(required)('the posix_spawn addon is built where it is required (EDGEVISOR_REQUIRE_NATIVE=1, as in CI)', () => {
  expect(posixSpawnAvailable()).toBe(true);
});

it('child_process is the launcher by default; posix_spawn is taken only when named, and refused with a reason when it cannot load', () => {
  expect(launcherFor('child_process')).toBe(launchWithNode);
  if (native) expect(launcherFor('posix_spawn')).toBeTypeOf('function');
  else expect(() => launcherFor('posix_spawn')).toThrow(/^jobs\.launcher is "posix_spawn" but .*npm run build:native/);
});

it.runIf(native || required)(
  'reads the exit of a posix_spawn child right while child_process children come and go (each side reaps only its own)',
  async () => {
    const ours = runProcess({ path: '/bin/sh', args: ['-c', 'sleep 0.3; exit 7'], env, timeoutMs: 10_000, launcher: launchWithPosixSpawn });
    const theirs = Array.from({ length: 10 }, (_, i) =>
      runProcess({ path: '/bin/sh', args: ['-c', `sleep 0.0${i}; exit ${i}`], env, timeoutMs: 10_000, launcher: launchWithNode }),
    );
    expect((await Promise.all(theirs)).map((r) => r.exitCode)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await ours).toMatchObject({ exitCode: 7, signal: null });
  },
);

// The same behaviour whichever way the program is started.
describe.each<[string, Launcher]>([
  ...(native || required ? [['posix_spawn', launchWithPosixSpawn] as [string, Launcher]] : []),
  ['child_process', launchWithNode],
])('runProcess, started with %s', (_name, launcher) => {
  const run = (path: string, args: string[], extra: Partial<RunOptions> = {}) => {
    let pgid = 0;
    const result = runProcess({ path, args, env, timeoutMs: 10_000, graceMs: 300, onSpawn: (id) => (pgid = id), launcher, ...extra });
    return { result, pgid: () => pgid };
  };
  const sh = (script: string, extra: Partial<RunOptions> = {}) => run('/bin/sh', ['-c', script], extra);

  it('starts the program in a session and process group of its own, in the given directory, with no signal blocked and none of the standard ones ignored', async () => {
    const r = await run('/bin/sh', ['-c', 'pwd; cat /proc/self/stat; grep -E "^Sig(Ign|Blk)" /proc/self/status'], { cwd: '/tmp' }).result;
    const [pwd, stat, ...masks] = r.stdout.trim().split('\n');
    expect(pwd).toBe('/tmp');
    // fields after "(comm)": state ppid pgrp session; cat's group and session are its shell's
    const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(pgrp).toBe(session);
    expect(Number(pgrp)).toBeGreaterThan(0);
    // signals 1-31 (Node ignores SIGPIPE; a job must not inherit that); glibc keeps its two
    // internal real-time signals (32, 33) ignored across posix_spawn, which no program can use
    const [blocked, ignored] = masks.map((line) => BigInt(`0x${line.split('\t')[1]}`));
    expect(blocked).toBe(0n);
    expect(ignored & 0x7fffffffn).toBe(0n);
  });

  it('runs the program with its arguments as they are: no shell ever interprets them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-run-'));
    const marker = join(dir, 'marker');
    const { result } = run('/bin/echo', [`$(touch ${marker})`, '; touch', marker, '`id`']);
    const r = await result;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`$(touch ${marker}) ; touch ${marker} \`id\`\n`);
    expect(existsSync(marker)).toBe(false);
  });

  it('gives the child only the environment it is handed', async () => {
    process.env.EDGEVISOR_SECRET_FOR_TEST = 'leak';
    const r = await run('/usr/bin/env', []).result;
    expect(r.stdout.trim().split('\n').sort()).toEqual(['LANG=C.UTF-8', 'PATH=/usr/bin:/bin']);
  });

  it('reports the exit code and counts stderr lines (a last line without newline counts)', async () => {
    const r = await sh('echo one >&2; echo two >&2; printf three >&2; exit 3').result;
    expect(r).toMatchObject({ exitCode: 3, signal: null, timedOut: false, stderrLines: 3, stderr: 'one\ntwo\nthree' });
  });

  it('drains 50 MB of stdout with bounded memory and keeps the end', async () => {
    const r = await sh('head -c 52428800 /dev/zero | tr "\\0" "x"; echo; echo the-end', { outputCapBytes: 4096 }).result;
    expect(r.exitCode).toBe(0);
    expect(r.stdoutBytes).toBe(52428800 + 1 + 8);
    expect(r.stdout.length).toBeLessThanOrEqual(4096);
    expect(r.stdout.endsWith('\nthe-end\n')).toBe(true);
  });

  it('does not deadlock on 4 MB of stderr before any stdout', async () => {
    const r = await sh('head -c 4194304 /dev/zero >&2; echo done', { timeoutMs: 20_000 }).result;
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'done\n', stderrBytes: 4194304 });
  });

  it('on timeout kills the whole process group, background children included', async () => {
    const { result, pgid } = sh('sleep 30 & sleep 30 & wait', { timeoutMs: 300 });
    const r = await result;
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGTERM');
    expect(r.durationMs).toBeLessThan(5000);
    expect(await groupAlive(pgid())).toBe(false);
  });

  it('sends KILL after the grace period to a group that ignores TERM', async () => {
    const { result, pgid } = sh('trap "" TERM; sleep 30 & while :; do sleep 0.05; done', { timeoutMs: 200, graceMs: 300 });
    const r = await result;
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    expect(await groupAlive(pgid())).toBe(false);
  });

  it('does not wait for, nor leave behind, a background child that keeps the pipes open', async () => {
    const { result, pgid } = sh('sleep 30 & echo started');
    const r = await result;
    expect(r).toMatchObject({ exitCode: 0, stdout: 'started\n', timedOut: false });
    expect(r.durationMs).toBeLessThan(3000);
    expect(await groupAlive(pgid())).toBe(false);
  });

  it('an abort (job canceled) kills the group', async () => {
    const controller = new AbortController();
    const { result, pgid } = sh('sleep 30', { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const r = await result;
    expect(r.aborted).toBe(true);
    expect(await groupAlive(pgid())).toBe(false);
  });

  it('reports a program that cannot start', async () => {
    const r = await run('/nonexistent/program', []).result;
    expect(r.spawnError).toMatch(/^ENOENT/);
    expect(r.exitCode).toBeNull();
  });

  it('cuts the kept tail on a whole UTF-8 character', async () => {
    const r = await sh('i=0; while [ $i -lt 200 ]; do printf "é€😀"; i=$((i+1)); done', { outputCapBytes: 101 }).result;
    expect(r.stdout.includes('\ufffd')).toBe(false);
    expect(r.stdout.endsWith('é€😀')).toBe(true);
  });
});
