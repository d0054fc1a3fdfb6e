import { describe, expect, it } from 'vitest';
import type { HelperDone } from '../../../src/jobs/spawn-helper.js';
import { fork } from 'node:child_process';
import { helperEntry, Spawner } from '../../../src/jobs/spawner.js';
import { groupMembers, running } from '../../support/processes.js';
import { waitFor } from '../../support/ports.js';

const env = { PATH: '/usr/bin:/bin' };

function start(spawner: Spawner, script: string) {
  let pid: number | undefined;
  const outcome = new Promise<{ done?: HelperDone; error?: string }>((resolve) =>
    spawner.run({ path: '/bin/sh', args: ['-c', script], env, capBytes: 1024 }, { onPid: (p) => (pid = p), onDone: (done) => resolve({ done }), onError: (error) => resolve({ error }) }),
  );
  return { outcome, pid: () => pid };
}

describe('spawner (the spawn helper)', () => {
  it('runs programs in their own process group and reports their output and exit', async () => {
    const spawner = new Spawner();
    const { outcome, pid } = start(spawner, 'echo out; echo err >&2; exit 3');
    const { done } = await outcome;
    expect(done).toMatchObject({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n', stderrLines: 1 });
    expect(pid()).toBeGreaterThan(0);
    expect(pid()).not.toBe(spawner.helperPid);
    spawner.stop();
  });

  it('a helper that dies fails the runs it had, kills their groups, and is started again for the next', async () => {
    const spawner = new Spawner();
    const { outcome, pid } = start(spawner, 'sleep 30 & sleep 30');
    await waitFor(() => pid(), 'the program to run');
    const first = spawner.helperPid!;
    process.kill(first, 'SIGKILL');
    expect((await outcome).error).toMatch(/spawn helper exited/);
    await waitFor(() => groupMembers(pid()!).length === 0 || undefined, 'the orphaned group to be killed', 3000);
    const again = await start(spawner, 'echo again').outcome;
    expect(again.done?.stdout).toBe('again\n');
    expect(spawner.helperPid).not.toBe(first);
    spawner.stop();
    await waitFor(() => !running(first) || undefined, 'the old helper to be gone');
  });

  it('reports a program that cannot start, and keeps serving', async () => {
    const spawner = new Spawner();
    const missing = await new Promise<string>((resolve) =>
      spawner.run({ path: '/nonexistent/program', args: [], env, capBytes: 1024 }, { onPid: () => resolve('ran'), onDone: () => resolve('ran'), onError: resolve }),
    );
    expect(missing).toMatch(/^ENOENT/);
    expect((await start(spawner, 'echo fine').outcome).done?.stdout).toBe('fine\n');
    spawner.stop();
  });

  it('when the agent goes away, the helper kills a group it was not told is recorded, and leaves a recorded one', async () => {
    const { path, execArgv } = helperEntry();
    const helper = fork(path, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const pids = new Map<number, number>();
    helper.on('message', (m: { id: number; pid?: number }) => m.pid && pids.set(m.id, m.pid));
    for (const id of [1, 2]) helper.send({ id, path: '/bin/sh', args: ['-c', 'sleep 30 & sleep 30'], env, capBytes: 1024 });
    await waitFor(() => pids.size === 2 || undefined, 'both to run');
    helper.send({ recorded: 1 });
    await new Promise((r) => setTimeout(r, 100)); // the word reaches the helper before the channel closes
    helper.disconnect();
    await waitFor(() => groupMembers(pids.get(2)!).length === 0 || undefined, 'the unrecorded group to be killed', 3000);
    expect(groupMembers(pids.get(1)!).length).toBeGreaterThan(0);
    process.kill(-pids.get(1)!, 'SIGKILL');
  });
});
